"""Least privilege in Postgres, on the real server: each service's own role (moe_core.runtime.pg.tables.role_of) can do
with each table exactly what the declaration says, and nothing else — the privilege matrix is tried statement by
statement (in transactions rolled back), for the fleet store and for an audit store of this test's own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from moe_core.audit.schema import migrate as migrate_audit
from moe_core.runtime.pg.migrate import run as migrate_fleet
from moe_core.runtime.pg.tables import ADMIN, EDGE, PRIVILEGES, RECORDER, TOOLS, PgTable, privileges, services, tables
from tests.support.namespaces import new_namespace

pytestmark = pytest.mark.infra


def _statement(privilege: str, qualified: str, column: str) -> str:
    """A statement that needs `privilege` on the table and nothing more (it touches no row)."""
    return {"SELECT": f"SELECT 1 FROM {qualified} LIMIT 0",
            "INSERT": f"INSERT INTO {qualified} DEFAULT VALUES",  # allowed: fails on a NOT NULL column instead
            "UPDATE": f'UPDATE {qualified} SET "{column}" = NULL WHERE false',
            "DELETE": f"DELETE FROM {qualified} WHERE false"}[privilege]


async def _allowed(conn: asyncpg.Connection, statement: str) -> bool:
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.execute(statement)
    except asyncpg.InsufficientPrivilegeError:
        return False
    except asyncpg.IntegrityConstraintViolationError:
        return True  # past the privilege check
    finally:
        await transaction.rollback()
    return True


async def _first_columns(owner_dsn: str, schema: str, declared: list[PgTable]) -> dict[str, str]:
    conn = await asyncpg.connect(owner_dsn)
    try:
        return {t.name: await conn.fetchval("SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1) AND "
                                            "attnum > 0 AND NOT attisdropped ORDER BY attnum LIMIT 1",
                                            f'"{schema}"."{t.name}"') for t in declared}
    finally:
        await conn.close()


async def _matrix(infra: dict[str, str], owner: str, schema: str, declared: list[PgTable]) -> list[str]:
    """Every (service, table, privilege) whose outcome differs from the declaration."""
    columns = await _first_columns(infra[owner], schema, declared)
    assert None not in columns.values(), f"declared but not made by the migration: {columns}"
    wrong = []
    for service in services():
        conn = await asyncpg.connect(infra[f"postgres-{service}"])
        try:
            for t in declared:
                column = columns[t.name]
                for privilege in ("SELECT",) if t.view else PRIVILEGES:
                    allowed = await _allowed(conn, _statement(privilege, f'"{schema}"."{t.name}"', column))
                    if allowed != (privilege in privileges(service, t.name)):
                        wrong.append(f"{service} {privilege} {t.name}: {'allowed' if allowed else 'refused'}")
        finally:
            await conn.close()
    return wrong


async def test_each_services_role_has_exactly_its_declared_privileges_on_the_fleet_store(
        infra: dict[str, str]) -> None:
    assert await migrate_fleet(infra["postgres-migrator"]) == []  # every declared role exists; idempotent
    assert await _matrix(infra, "postgres-migrator", "public", tables("fleet")) == []


@pytest.fixture
async def audit_schema(infra: dict[str, str]) -> AsyncIterator[str]:
    """An audit store of this test's own, made by the audit migrator as codex_lineage.migrate makes it."""
    schema = "audit_" + new_namespace("roles").replace("-", "_")
    conn = await asyncpg.connect(infra["postgres-audit-migrator"])
    try:
        await migrate_audit(conn, schema)
        yield schema
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def test_each_services_role_has_exactly_its_declared_privileges_on_the_audit_store(
        infra: dict[str, str], audit_schema: str) -> None:
    assert await _matrix(infra, "postgres-audit-migrator", audit_schema, tables("audit")) == []


async def test_what_the_review_asked_for(infra: dict[str, str], audit_schema: str) -> None:
    """The cases named in issue 24, spelled out: mcp cannot write api_keys or read the audit, the gateway cannot
    write the audit, the gap-healer cannot read keys, and no service can create or drop a table."""
    cases = [(TOOLS, "INSERT INTO api_keys DEFAULT VALUES"), (TOOLS, "SELECT 1 FROM api_keys LIMIT 0"),
             (TOOLS, f'SELECT 1 FROM "{audit_schema}".audit_log LIMIT 0'),
             (ADMIN, f'INSERT INTO "{audit_schema}".audit_log DEFAULT VALUES'),
             (EDGE, f'DELETE FROM "{audit_schema}".audit_checkpoints'),
             (RECORDER, f'UPDATE "{audit_schema}".audit_log SET payload = NULL WHERE false'),
             (RECORDER, "UPDATE api_keys SET name = NULL WHERE false"),
             ("gap-healer", "SELECT 1 FROM api_keys_resolved LIMIT 0"),
             ("gap-healer", "DELETE FROM graph_runs WHERE false")]
    cases += [(s, stmt) for s in services() for stmt in
              ("CREATE TABLE public.intruder (a int)", "DROP TABLE graph_runs", "TRUNCATE usage_daily",
               "ALTER TABLE api_keys ADD COLUMN intruder int", f'CREATE TABLE "{audit_schema}".intruder (a int)')]
    for service, statement in cases:
        conn = await asyncpg.connect(infra[f"postgres-{service}"])
        try:
            assert not await _allowed(conn, statement), f"{service} may: {statement}"
        finally:
            await conn.close()
