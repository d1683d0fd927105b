"""Postgres: the whole fleet database (keys, tenants, usage, imports, the audit log and its checkpoints) as one
pg_dump custom-format archive, restored with pg_restore (owners and grants as they were). Both run as argument
lists, the password in the child's environment (PGPASSWORD), never on a command line. The archive holds no
privileges on the database itself (pg_dump leaves them to --create), so the manifest keeps them (the migrators'
CREATE, every role's CONNECT) and a restore grants them again: into a database made anew, the migrations still run."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from control_plane.ops.backup.settings import BackupSettings

FILE = "postgres.dump"


class ToolMissing(RuntimeError):
    """pg_dump or pg_restore is not installed where the settings say."""


def binary(name: str, settings: BackupSettings) -> str:
    if settings.pg_bin_dir:
        path = Path(settings.pg_bin_dir) / name
        if not path.is_file():
            raise ToolMissing(f"{path} not found (MOE_BACKUP_PG_BIN_DIR)")
        return str(path)
    found = shutil.which(name)
    if found:
        return found
    debian = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parent.parent.name))
    if debian:
        return str(debian[-1])
    raise ToolMissing(f"{name} not found on PATH nor under /usr/lib/postgresql (set MOE_BACKUP_PG_BIN_DIR)")


def _split(dsn: str) -> tuple[str, dict[str, str]]:
    """The DSN without its password, and the child environment carrying it."""
    parts = urlsplit(dsn)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if parts.password:
        env["PGPASSWORD"] = parts.password
        netloc = f"{parts.username}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts), env


def _run(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)  # noqa: S603 (an argument list)
    if done.returncode != 0:
        raise RuntimeError(f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


async def dump(settings: BackupSettings, folder: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The archive and each tenant's chain head, both of one snapshot (pg_dump --snapshot of a transaction that
    reads the heads): the manifest's heads are exactly what the archive holds, even with the fleet running."""
    conn = await asyncpg.connect(settings.postgres_dsn.get_secret_value())
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
            heads = await _heads(conn, settings.audit_schema)
            grants = await database_grants(conn)
            dsn, env = _split(settings.postgres_dsn.get_secret_value())
            args = [binary("pg_dump", settings), "--format=custom", "--no-password", f"--snapshot={snapshot}",
                    f"--file={folder / FILE}", f"--dbname={dsn}"]
            await asyncio.to_thread(_run, args, env)
    finally:
        await conn.close()
    return {"file": FILE, "tool": "pg_dump --format=custom", "database_grants": grants}, heads


async def database_grants(conn: asyncpg.Connection) -> list[list[str]]:
    """[role, privilege] of every privilege a role other than the owner holds on the connected database."""
    rows = await conn.fetch(
        "SELECT a.grantee::regrole::text AS role, a.privilege_type FROM pg_database d, aclexplode(d.datacl) a "
        "WHERE d.datname = current_database() AND a.grantee <> 0 AND a.grantee <> d.datdba "
        "ORDER BY 1, 2")
    return [[r["role"], r["privilege_type"]] for r in rows]


def restore(settings: BackupSettings, folder: Path, grants: list[list[str]]) -> None:
    """The database's objects replaced by the archive's (dropped first when they exist), owners kept, and the
    privileges on the database the backup recorded granted again."""
    dsn, env = _split(settings.postgres_dsn.get_secret_value())
    _run([binary("pg_restore", settings), "--clean", "--if-exists", "--single-transaction", "--exit-on-error",
          "--no-password", f"--dbname={dsn}", str(folder / FILE)], env)
    asyncio.run(_grant(settings.postgres_dsn.get_secret_value(), grants))


async def _grant(dsn: str, grants: list[list[str]]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for role, privilege in grants:
            if privilege not in ("CREATE", "CONNECT", "TEMPORARY"):
                raise ValueError(f"the backup names an unknown privilege on the database: {privilege!r}")
            if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
                await conn.execute(await conn.fetchval(
                    f"SELECT format('GRANT {privilege} ON DATABASE %I TO %I', current_database(), $1::text)", role))
    finally:
        await conn.close()


async def _heads(conn: asyncpg.Connection, schema: str) -> dict[str, dict[str, Any]]:
    """Each tenant's chain head (seq, hash) and its newest checkpoint's size in the audit store (none: {})."""
    if not await conn.fetchval("SELECT to_regclass($1)", f"{schema}.audit_log"):
        return {}
    await conn.execute("SELECT set_config('search_path', $1, true)", schema)  # this transaction only
    rows = await conn.fetch("SELECT DISTINCT ON (tenant_id) tenant_id, seq, hash FROM audit_log "
                            "ORDER BY tenant_id, seq DESC")
    checkpoints = dict(await conn.fetch("SELECT tenant_id, max(size) FROM audit_checkpoints GROUP BY tenant_id"))
    return {r["tenant_id"]: {"seq": r["seq"], "hash": r["hash"], "checkpoint": checkpoints.get(r["tenant_id"])}
            for r in rows}
