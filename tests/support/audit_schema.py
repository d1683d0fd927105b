"""A fleet's own audit schema in Postgres (tests and `make bench --record`): made by the audit store's migrator
role as fleetctl makes the production `audit` schema, and dropped afterwards."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg

from tests.support.fleet import REPO


def own_schema(namespace: str) -> str:
    """A test fleet's own audit schema (never the production `audit`, which belongs to its migrator role)."""
    return ("audit_" + namespace.replace("-", "_"))[:63]


def drop_schema(dsn: str, schema: str) -> None:
    asyncio.run(_drop_schema(dsn, schema))


async def _drop_schema(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def migrate_schema(env: dict[str, str], owner_dsn: str) -> None:
    """python -m codex_lineage.migrate into env's MOE_AUDIT_SCHEMA as its owner (the migrator role), as fleetctl runs
    it before codex-lineage starts: codex-lineage's role may then only append, the operator's only read."""
    env = {**env, "MOE_AUDIT_MIGRATOR_DSN": owner_dsn, "MOE_AUDIT_WRITER_ROLE": "moe_codex_lineage",
           "MOE_AUDIT_READER_ROLES": "moe"}
    done = subprocess.run([sys.executable, "-m", "codex_lineage.migrate"], env={**os.environ, **env}, cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
