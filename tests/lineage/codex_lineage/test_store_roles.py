"""Least privilege in the audit store of the running lineage fleet: its tables belong to the migrator role
(python -m codex_lineage.migrate made them before codex-lineage started); codex-lineage's own role may read and
insert, nothing else; the control plane's own role (it serves the audit API) may only read, and cannot create
or alter the store; the gateway's own role cannot even read it
(tests/infra/moe_core/runtime/test_pg_roles.py tries every declared privilege of every service)."""

from __future__ import annotations

import asyncpg
import pytest

from moe_core.audit.store import AuditStore
from tests.lineage.conftest import LineageFleet

pytestmark = pytest.mark.e2e


def _changes(schema: str) -> list[str]:
    s = f'"{schema}"'
    return [f"UPDATE {s}.audit_log SET payload = payload", f"DELETE FROM {s}.audit_log",
            f"TRUNCATE {s}.audit_checkpoints", f"UPDATE {s}.audit_checkpoints SET root = root",
            f"CREATE TABLE {s}.extra (a int)", f"ALTER TABLE {s}.audit_log ADD COLUMN extra int",
            f"DROP TABLE {s}.audit_checkpoints", f"DROP SCHEMA {s} CASCADE"]


async def _refused(dsn: str, statements: list[str]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
    finally:
        await conn.close()


async def test_the_control_planes_role_reads_the_audit_store_and_cannot_write_it(lineage_fleet: LineageFleet) -> None:
    assert lineage_fleet.fleet["control-plane"].env["MOE_POSTGRES_DSN"] == lineage_fleet.dsn
    s = f'"{lineage_fleet.schema}"'
    edge = await asyncpg.connect(lineage_fleet.fleet["gateway"].env["MOE_POSTGRES_DSN"])
    try:  # the edge checks keys and settles usage: the record is none of its business
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await edge.fetchval(f"SELECT count(*) FROM {s}.audit_log")
    finally:
        await edge.close()
    conn = await asyncpg.connect(lineage_fleet.dsn)
    try:
        assert await conn.fetchval(f"SELECT count(*) FROM {s}.audit_log") > 0  # the journeys were recorded
        assert await conn.fetchval(f"SELECT count(*) FROM {s}.audit_records") > 0
    finally:
        await conn.close()
    await _refused(lineage_fleet.dsn, [*_changes(lineage_fleet.schema),
                                        f"INSERT INTO {s}.audit_checkpoints SELECT * FROM {s}.audit_checkpoints"])
    reader = await AuditStore.connect(lineage_fleet.dsn, lineage_fleet.schema, migrate=False)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):  # it cannot create or migrate the store either
            await reader.migrate()
    finally:
        await reader.close()


async def test_codex_lineages_role_inserts_and_reads_but_changes_nothing(lineage_fleet: LineageFleet,
                                                                         infra: dict[str, str]) -> None:
    writer = infra["postgres-codex-lineage"]
    assert lineage_fleet.fleet["codex-lineage"].env["MOE_AUDIT_WRITER_DSN"] == writer
    s = f'"{lineage_fleet.schema}"'
    conn = await asyncpg.connect(writer)
    try:
        undone = conn.transaction()  # an insert works (and is rolled back: the store is the fleet's)
        await undone.start()
        inserted = await conn.execute(f"INSERT INTO {s}.audit_checkpoints SELECT tenant_id, size, root, "
                                      "time + interval '1 microsecond', key_id, body, signature, timestamp "
                                      f"FROM {s}.audit_checkpoints LIMIT 1")
        await undone.rollback()
        assert inserted == "INSERT 0 1"
        assert await conn.fetchval(f"SELECT count(*) FROM {s}.audit_log") > 0
    finally:
        await conn.close()
    await _refused(writer, _changes(lineage_fleet.schema))
