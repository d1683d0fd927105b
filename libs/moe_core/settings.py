"""Settings shared by every service (env prefix MOE_); each service subclasses with its own fields."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class FleetSettings(BaseSettings):
    """Infrastructure addresses and common behaviour. Every value can be set as MOE_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    service_name: str = Field(default="moe", description="Names the service in metrics, traces and logs, and "
                              "its consumer group (each service sets its own)")
    kafka_bootstrap: str = Field(default="127.0.0.1:9092", description="Kafka bootstrap servers")
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"] = Field(
        default="PLAINTEXT", description="How the Kafka clients connect: SASL_PLAINTEXT (the local fleet), SASL_SSL "
                                         "(SASL over TLS, verified with kafka_ca_file), SSL or PLAINTEXT (no identity)")
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        default="SCRAM-SHA-512", description="The SASL mechanism (with a SASL_* protocol)")
    kafka_username: str = Field(default="", description="The service's Kafka principal (its own name in the local "
                                "fleet, compose and the chart: its ACLs come from its declaration)")
    kafka_password: SecretStr = Field(default=SecretStr(""), description="The principal's SCRAM password")
    kafka_ca_file: str = Field(default="", description="CA certificate (PEM) the broker's TLS certificate is verified "
                                                       "with (SSL, SASL_SSL); empty = the system's trust store")
    kafka_create_topics: bool = Field(
        default=True, description="Create the fleet's topics and update their retention at start; false where an "
                                  "admin does it (fleetctl, the chart's topics Job, compose's kafka-setup) and the "
                                  "service's principal may not (broker ACLs)")
    topic_namespace: str = Field(default="moe", pattern=r"^[a-zA-Z0-9_-]+$", description="Topic prefix "
                                 "(moe.requests.v1 ...); also suffixes consumer groups; tests use their own")
    topic_partitions: int = Field(default=6, ge=1, description="Partitions of the topics the services create "
                                  "(existing topics are not resized)")
    topic_replication_factor: int = Field(default=1, ge=1, description="Replicas of each topic created (the "
                                          "chart's kafka-setup Job sets topics.replicationFactor)")
    redis_url: str = Field(default="redis://127.0.0.1:6380/0", description="Redis: request state, memos, caches")
    postgres_dsn: str = Field(default="postgresql://moe@127.0.0.1:5433/moe",
                              description="Postgres: keys, usage, the audit store, the graph's run history")
    http_host: str = Field(default="127.0.0.1", description="Address the service's HTTP server listens on")
    http_port: int = Field(default=8000, description="Port of the service's HTTP server (each service sets its own)")
    log_level: str = Field(default="INFO", description="Log level")
    log_json: bool = Field(default=False, description="Log JSON lines (with service and response_id)")
    consumer_workers: int = Field(default=4, ge=1, description="Partitions processed concurrently")
    retry_base_s: float = Field(default=0.5, gt=0, description="A transient failure's first backoff "
                                "before the record is redelivered; doubled per attempt (moe_core.redelivery)")
    retry_cap_s: float = Field(default=30.0, gt=0, description="The longest backoff between redeliveries")
    retry_max_attempts: int = Field(default=10, ge=1, description="Attempts at a record failing transiently "
                                    "before it is dead-lettered with its last error")
    kafka_fetch_max_wait_ms: int = Field(
        default=500, ge=0, le=30_000,
        description="How long the broker holds an idle consumer's fetch; a record ends it at once (long poll)",
    )
    kafka_commit_interval_ms: int = Field(
        default=200, ge=0, le=60_000,
        description="A stage's consumer commits the offsets of the records it handled at most this often (and "
                    "on rebalance and shutdown); 0 = after every record (moe_core.offset_commits)",
    )
    inference_servers: str = Field(
        default="",
        validation_alias=AliasChoices("INFERENCE_SERVERS", "MOE_INFERENCE_SERVERS"),
        description="JSON list of inference servers; empty = the embedded local LLM",
    )
    model_assignments: str = Field(
        default="",
        validation_alias=AliasChoices("MODEL_ASSIGNMENTS", "MOE_MODEL_ASSIGNMENTS"),
        description="JSON {role: [model refs]}; roles: planner, judge, default",
    )
    expert_templates: str = Field(
        default="",
        validation_alias=AliasChoices("EXPERT_TEMPLATES", "MOE_EXPERT_TEMPLATES"),
        description="JSON {category: [model refs]}, ordered by preference",
    )
    expert_templates_file: str = Field(
        default="policy/templates.yaml",
        description="Named expert templates (YAML, moe_core.templates), selected per key or request; a relative "
                    "path is looked up in the working directory, then the repository; empty = none",
    )
    named_templates: str = Field(
        default="", description="The templates file's YAML text itself (Helm, compose); set, it wins over the file",
    )
    inference_heartbeat_s: float = Field(default=10.0, gt=0, description="Fleet: poll servers this often")
    inference_unhealthy_s: float = Field(default=15.0, gt=0, description="Fleet: skip a failed server this long")
    inference_affinity_ttl_s: int = Field(default=600, ge=1, description="Fleet: sticky user->server affinity")
    tools_enabled: str = Field(default="all", description="Precision tools offered: 'all' or a comma list")
    tools_disabled: str = Field(default="", description="Precision tools switched off (comma list)")
    local_llm_url: str = Field(default="http://127.0.0.1:8081",
                               description="The embedded LLM: the one server when INFERENCE_SERVERS is empty")
    local_llm_model: str = Field(default="smollm2-135m", description="The model the embedded LLM serves")
    audit_schema: str = Field(default="audit", pattern=r"^[a-z_][a-z0-9_]{0,62}$",
                              description="Postgres schema of the audit store (written by codex-lineage)")
    audit_public_key: str = Field(default="", description="codex-lineage's audit public key (PEM file): verifying "
                                                          "the audit store's signatures (GET /v1/audit?verify=true)")
    audit_tsa_chain: str = Field(default="", description="The timestamp authority's certificate chain (PEM file): "
                                                         "verifying the checkpoints' RFC 3161 timestamps")
    audit_timestamp_skew_s: float = Field(default=300.0, gt=0, description="How far a checkpoint's timestamp may "
                                                                           "be from the time it claims")
    topic_retention_days: str = Field(
        default="", description='JSON {topic kind: days} over the audit defaults (moe_core.retention), e.g. '
                                '{"answers": 90}; applied when topics are created and updated when changed')
    otel_exporter_endpoint: str = Field(
        default="",
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT", "MOE_OTEL_EXPORTER_ENDPOINT"),
        description="OTLP/gRPC endpoint the spans are exported to; empty = no export",
    )

    @model_validator(mode="after")
    def _kafka_identity(self) -> FleetSettings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
                self.kafka_username and self.kafka_password.get_secret_value()):
            raise ValueError(f"kafka_security_protocol {self.kafka_security_protocol} needs MOE_KAFKA_USERNAME and "
                             "MOE_KAFKA_PASSWORD")
        return self

    def group_id(self) -> str:
        """Consumer group: the service name, namespaced so test fleets never join production groups."""
        if self.topic_namespace == "moe":
            return self.service_name
        return f"{self.service_name}.{self.topic_namespace}"
