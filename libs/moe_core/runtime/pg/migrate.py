"""`python -m moe_core.runtime.pg.migrate`: create or bring up to date the fleet store's tables
(moe_core.runtime.pg.ddl) as the
migrator role (MOE_PG_MIGRATOR_DSN, their owner), then grant each service's own role exactly what the
declaration (moe_core.runtime.pg.tables) says. Run before the services start (fleetctl, the Helm pre-install job,
compose's `migrate` service); no request-serving service creates or alters a table. A declared role that does
not exist gets no grants (named in the output): a single-role set-up keeps working with its one role."""

from __future__ import annotations

import asyncio
import hashlib
import sys
from typing import Any

import asyncpg
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from moe_core.runtime.pg import grants
from moe_core.runtime.pg.ddl import MIGRATIONS
from moe_core.runtime.pg.tables import role_of, services

LOCK = 424242  # the advisory lock the gateway took when it still migrated at start
APPLIED = ("CREATE TABLE IF NOT EXISTS moe_migrations (name text PRIMARY KEY, digest text NOT NULL, "
           "applied_at timestamptz NOT NULL DEFAULT now())")


class MigrateSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    pg_migrator_dsn: str = Field(default="", description="The fleet store's owner (its migrator role), for python -m "
                                                         "moe_core.runtime.pg.migrate; empty: MOE_POSTGRES_DSN")
    postgres_dsn: str = Field(default="postgresql://moe@127.0.0.1:5433/moe", description="Postgres DSN")


async def migrate(conn: Any) -> list[str]:
    """Apply the migrations not yet applied in this form and (re)make the grants; returns the declared roles
    that do not exist. One migrator at a time (advisory lock), all in one transaction."""
    await conn.execute("SELECT pg_advisory_lock($1::bigint)", LOCK)
    try:
        async with conn.transaction():
            await conn.execute(APPLIED)
            for migration in MIGRATIONS:
                digest = hashlib.sha256(migration.sql.encode()).hexdigest()
                if await conn.fetchval("SELECT digest FROM moe_migrations WHERE name = $1", migration.name) == digest:
                    continue  # DDL takes exclusive locks even when it changes nothing: not again
                await conn.execute(migration.sql)
                await conn.execute("INSERT INTO moe_migrations (name, digest) VALUES ($1, $2) ON CONFLICT (name) "
                                   "DO UPDATE SET digest = $2, applied_at = now()", migration.name, digest)
            roles, missing = await grants.existing(conn, {s: role_of(s) for s in services()})
            await grants.apply(conn, grants.grants("fleet", "public", roles))
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1::bigint)", LOCK)
    return missing


async def run(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


def main() -> int:
    settings = MigrateSettings()
    try:
        missing = asyncio.run(run(settings.pg_migrator_dsn or settings.postgres_dsn))
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"fleet store migration failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    for role in missing:
        print(f"no grants for role {role}: it does not exist")
    print(f"fleet store: up to date ({len(MIGRATIONS)} migrations)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
