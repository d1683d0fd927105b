"""`python -m moe_core.runtime.pg.roles`: the fleet's Postgres roles, made (or given their password again) by an
administrator (MOE_PG_ADMIN_DSN, e.g. the image's superuser): the stores' owners, which only migrate
(moe_migrator, moe_audit_migrator), and each service's own role (moe_core.runtime.pg.tables.role_of). A role's password
comes from MOE_PG_PASSWORD_<ROLE> (e.g. MOE_PG_PASSWORD_MOE_GATEWAY); a role without one is made without a
password. Tables of the fleet store made before the migrator existed are handed to it (adopted). Run before the
migrations (compose's `pg-migrate`, the chart's migration Job; fleetctl calls the same functions)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from moe_core.runtime.pg.tables import AUDIT_MIGRATOR_ROLE, MIGRATOR_ONLY, MIGRATOR_ROLE, role_of, services, tables

LOCK = 424242  # moe_core.runtime.pg.migrate's: adopting waits for a running migration


def every_role() -> list[str]:
    return [MIGRATOR_ROLE, AUDIT_MIGRATOR_ROLE, *map(role_of, services())]


async def sql(conn: Any, template: str, *values: str | None) -> None:
    """A statement with identifiers (%I) and literals (%L) quoted by the server (format())."""
    args = ", ".join(f"${i + 2}::text" for i in range(len(values)))
    await conn.execute(await conn.fetchval(f"SELECT format($1::text, {args})", template, *values))


async def ensure_roles(conn: Any, database: str, passwords: Mapping[str, str | None],
                       operator: str | None = None) -> None:
    """Every role (LOGIN; its password set when given), the migrators' CREATE on the database (on schema public:
    `adopt`); `operator` (an operator's role, not a service's) becomes a member of the fleet store's migrator."""
    for role in every_role():
        password = passwords.get(role)
        verb = "ALTER" if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role) else "CREATE"
        if verb == "CREATE" or password is not None:
            await sql(conn, f"{verb} ROLE %I LOGIN PASSWORD %L", role, password)  # NULL: none
    for migrator in (MIGRATOR_ROLE, AUDIT_MIGRATOR_ROLE):
        await sql(conn, "GRANT CREATE, CONNECT ON DATABASE %I TO %I", database, migrator)
    if operator and not await conn.fetchval("SELECT pg_has_role($1, $2, 'MEMBER')", operator, MIGRATOR_ROLE):
        await sql(conn, "GRANT %I TO %I", MIGRATOR_ROLE, operator)


async def adopt(conn: Any) -> list[str]:
    """Let the migrator create in the connected database's schema public, and hand it the fleet store's tables
    and views that another role owns (made before the migrator existed, by the role the gateway used); returns
    their names. Connected to the fleet's database (a schema's grants are per database)."""
    names = [t.name for t in tables("fleet")] + list(MIGRATOR_ONLY)
    adopted = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1::bigint)", LOCK)
        await sql(conn, "GRANT USAGE, CREATE ON SCHEMA public TO %I", MIGRATOR_ROLE)
        for name, kind in await conn.fetch(
                "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relname = ANY($1::text[]) AND c.relkind IN ('r', 'v') "
                "AND c.relowner::regrole::text <> $2", names, MIGRATOR_ROLE):
            await sql(conn, f"ALTER {'VIEW' if kind == b'v' or kind == 'v' else 'TABLE'} public.%I OWNER TO %I",
                      name, MIGRATOR_ROLE)
            adopted.append(name)
    return adopted


def password_of(role: str) -> str | None:
    """MOE_PG_PASSWORD_<ROLE>, else the password of MOE_PG_DSN_<ROLE> (the DSN the role logs in with)."""
    given = os.environ.get(f"MOE_PG_PASSWORD_{role.upper()}")
    if given is not None:
        return given
    dsn = urlsplit(os.environ.get(f"MOE_PG_DSN_{role.upper()}", ""))
    return unquote(dsn.password) if dsn.password and unquote(dsn.username or "") == role else None


class RolesSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    pg_admin_dsn: str = Field(default="", description="An administrator of the database (creates the roles, "
                                                      "python -m moe_core.runtime.pg.roles)")
    pg_operator_role: str = Field(default="", description="An operator's role made a member of the fleet store's "
                                                          "migrator (python -m moe_core.runtime.pg.roles)")


async def run(settings: RolesSettings) -> list[str]:
    conn = await asyncpg.connect(settings.pg_admin_dsn, timeout=10)
    try:
        passwords = {r: password_of(r) for r in every_role()}
        await ensure_roles(conn, await conn.fetchval("SELECT current_database()"), passwords,
                           settings.pg_operator_role or None)
        return await adopt(conn)
    finally:
        await conn.close()


def main() -> int:
    settings = RolesSettings()
    if not settings.pg_admin_dsn:
        print("set MOE_PG_ADMIN_DSN (an administrator of the database)", file=sys.stderr)
        return 2
    try:
        adopted = asyncio.run(run(settings))
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"roles failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"roles: {', '.join(every_role())}" + (f"; adopted {', '.join(adopted)}" if adopted else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
