"""Settings of the backup tool (env prefix MOE_BACKUP_; the fleet's own MOE_* names are read where they exist)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class BackupSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOE_BACKUP_", extra="ignore", populate_by_name=True)

    postgres_dsn: SecretStr = Field(
        default=SecretStr("postgresql://postgres@127.0.0.1:5433/moe"),
        validation_alias=_alias("MOE_BACKUP_POSTGRES_DSN", "postgres_dsn"),
        description="Postgres as the database's owner or a superuser (pg_dump reads every table, pg_restore "
                    "recreates them with their owners)")
    pg_bin_dir: str = Field(default="", validation_alias=_alias("MOE_BACKUP_PG_BIN_DIR", "pg_bin_dir"),
                            description="Where pg_dump and pg_restore are (empty: PATH, then Debian's "
                                        "/usr/lib/postgresql/<newest>/bin)")
    audit_schema: str = Field(default="audit", pattern=r"^[a-z_][a-z0-9_]*$",
                              validation_alias=_alias("MOE_BACKUP_AUDIT_SCHEMA", "MOE_AUDIT_SCHEMA", "audit_schema"),
                              description="The audit store's schema (each tenant's chain head goes to the manifest)")
    neo4j_url: str = Field(default="bolt://127.0.0.1:7687",
                           validation_alias=_alias("MOE_BACKUP_NEO4J_URL", "MOE_NEO4J_URL", "MOE_NEO4J_URI",
                                                   "neo4j_url"), description="Neo4j's Bolt URL (empty: skipped)")
    neo4j_user: str = Field(default="", validation_alias=_alias("MOE_BACKUP_NEO4J_USER", "MOE_NEO4J_USER",
                                                                "neo4j_user"),
                            description="Neo4j's user (empty: no authentication)")
    neo4j_password: SecretStr = Field(default=SecretStr(""), validation_alias=_alias(
        "MOE_BACKUP_NEO4J_PASSWORD", "MOE_NEO4J_PASSWORD", "neo4j_password"), description="Neo4j's password")
    neo4j_database: str = Field(default="neo4j", validation_alias=_alias("MOE_BACKUP_NEO4J_DATABASE",
                                                                         "MOE_NEO4J_DATABASE", "neo4j_database"),
                                description="The Neo4j database backed up and restored")
    chroma_url: str = Field(default="http://127.0.0.1:8000", validation_alias=_alias(
        "MOE_BACKUP_CHROMA_URL", "MOE_CHROMA_URL", "chroma_url"), description="Chroma's URL (empty: skipped)")
    redis_url: SecretStr = Field(default=SecretStr("redis://127.0.0.1:6380/0"), validation_alias=_alias(
        "MOE_BACKUP_REDIS_URL", "MOE_REDIS_URL", "redis_url"), description="Redis (empty: skipped)")
    topic_namespace: str = Field(default="moe", pattern=r"^[a-zA-Z0-9_-]+$", validation_alias=_alias(
        "MOE_BACKUP_TOPIC_NAMESPACE", "MOE_TOPIC_NAMESPACE", "topic_namespace"),
        description="The fleet's topic namespace: its topics' configuration and its consumer groups")
    batch: int = Field(default=1000, ge=1, le=100_000, validation_alias=_alias("MOE_BACKUP_BATCH", "batch"),
                       description="Rows per read and per UNWIND write (Neo4j, Chroma, Redis)")
