"""PostgreSQL 15 (Debian package), our own cluster in .data/postgres, run as the `postgres` user.

A cluster initialised here gets scram-sha-256 password authentication everywhere (no trust): generated
passwords for the `postgres` superuser and the fleet's `moe` role (fleetlib.secrets, .data/secrets.json).
A cluster initialised before that (trust, no stored password) keeps working as it is.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import stat
import subprocess
from pathlib import Path
from typing import Any

from . import config, secrets
from .component import Component

BIN = Path(os.environ.get("MOE_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
PGDATA = config.DATA / "postgres"
SOCKET_DIR = config.DATA / "postgres-run"
OS_USER = "postgres"  # postgres refuses to run as root


def _env() -> dict[str, str]:
    home = pwd.getpwnam(OS_USER).pw_dir
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "LC_ALL": "C.UTF-8"}


def _ensure_traversable(path: Path) -> None:
    """The postgres user must be able to reach the data dir: add o+x to parents that lack it."""
    for parent in reversed(path.parents):
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            print(f"postgres: adding o+x to {parent} so the postgres user can reach {path}", flush=True)
            parent.chmod(mode | stat.S_IXOTH)


def _chown(path: Path, mode: int) -> None:
    pw = pwd.getpwnam(OS_USER)
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, pw.pw_uid, pw.pw_gid)
    path.chmod(mode)


def prepare() -> list[str]:
    config.DATA.mkdir(parents=True, exist_ok=True)
    _ensure_traversable(PGDATA)
    if not (PGDATA / "PG_VERSION").exists():
        if PGDATA.exists():
            shutil.rmtree(PGDATA)  # a half-finished initdb of ours
        _chown(PGDATA, 0o700)
        secrets.generate("postgres")  # the fleet role's, set in ensure_role_and_db
        pwfile = PGDATA.parent / "postgres-initdb.pw"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.generate("postgres-admin") + "\n")
        pw = pwd.getpwnam(OS_USER)
        os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        try:
            res = subprocess.run(  # noqa: S603
                [str(BIN / "initdb"), "-D", str(PGDATA), "-U", OS_USER, "-E", "UTF8", "--locale=C.UTF-8",
                 "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"],
                capture_output=True, text=True, env=_env(), user=OS_USER, group=OS_USER, extra_groups=[],
                check=False,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if res.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{res.stdout}{res.stderr}")
    _chown(SOCKET_DIR, 0o755)
    return [str(BIN / "postgres"), "-D", str(PGDATA), "-h", config.HOST, "-p", str(config.port("postgres")),
            "-k", str(SOCKET_DIR), "-c", "shared_buffers=64MB", "-c", "max_connections=100"]


async def ensure_role_and_db() -> None:
    import asyncpg

    conn = await asyncpg.connect(host=config.HOST, port=config.port("postgres"), user=OS_USER,
                                 password=secrets.get("postgres-admin"), database="postgres", timeout=3)
    try:
        user, db = config.POSTGRES_USER, config.POSTGRES_DB
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", user):
            create = await conn.fetchval("SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', $1::text, $2::text)",
                                         user, secrets.get("postgres"))  # quoted by the server; NULL: none
            await conn.execute(create)
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", db):
            await conn.execute(f'CREATE DATABASE "{db}" OWNER "{user}"')
        await _ensure_roles(conn, db)
    finally:
        await conn.close()


async def _ensure_roles(conn: Any, db: str) -> None:
    """The stores' owners, which only migrate (the fleet store's: python -m moe_core.runtime.pg.migrate; the audit
    store's: python -m codex_lineage.migrate), and each service's own role (moe_core.runtime.pg.tables.role_of), whose
    grants the migrations make from the declaration (moe_core.runtime.pg.roles). The operator's role (`moe`) is a member
    of the fleet store's migrator (its owner's rights there) and only reads the audit store. A cluster with
    passwords gets generated ones (fleetlib.secrets), set when a role is made."""
    from moe_core.runtime.pg import roles

    with_passwords = bool(secrets.get("postgres"))
    missing = [r for r in roles.every_role() if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1",
                                                                         r)]
    passwords = {r: secrets.generate(r) if with_passwords else None for r in missing}
    await roles.ensure_roles(conn, db, passwords, config.POSTGRES_USER)
    reader = config.AUDIT_READER_ROLE  # `make replay`'s role: codex_lineage.migrate grants it SELECT on the audit store
    if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", reader):
        await roles.sql(conn, "CREATE ROLE %I LOGIN PASSWORD %L", reader,
                        secrets.generate(reader) if with_passwords else None)


async def adopt_fleet_tables() -> None:
    """Tables of the fleet store made before the migrator role existed belong to the fleet's role (`moe`): hand
    them to the migrator (run before the migration; as the superuser)."""
    import asyncpg

    from moe_core.runtime.pg import roles

    conn = await asyncpg.connect(host=config.HOST, port=config.port("postgres"), user=OS_USER,
                                 password=secrets.get("postgres-admin"), database=config.POSTGRES_DB, timeout=3)
    try:
        await roles.adopt(conn)
    finally:
        await conn.close()


async def adopt_audit_schema(schema: str = "audit") -> None:
    """A store created before the migrator role existed belongs to the fleet's role: hand it to the migrator
    (run before the local codex-lineage starts; as the superuser)."""
    import asyncpg

    conn = await asyncpg.connect(host=config.HOST, port=config.port("postgres"), user=OS_USER,
                                 password=secrets.get("postgres-admin"), database=config.POSTGRES_DB, timeout=3)
    try:
        owner = await conn.fetchval("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1", schema)
        if owner is None or owner.strip('"') == config.AUDIT_MIGRATOR_ROLE:
            return
        async with conn.transaction():
            statements = [await conn.fetchval("SELECT format('ALTER SCHEMA %I OWNER TO %I', $1::text, $2::text)",
                                              schema, config.AUDIT_MIGRATOR_ROLE)]
            statements += [r[0] for r in await conn.fetch(
                "SELECT format('ALTER %s %I.%I OWNER TO %I', CASE c.relkind WHEN 'v' THEN 'VIEW' ELSE 'TABLE' END, "
                "n.nspname, c.relname, $2::text) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = $1 AND c.relkind IN ('r', 'v')", schema,  # a table's sequences follow it
                config.AUDIT_MIGRATOR_ROLE)]
            for statement in statements:
                await conn.execute(statement)
    finally:
        await conn.close()


async def check() -> None:
    import asyncpg

    await ensure_role_and_db()
    conn = await asyncpg.connect(config.endpoints()["postgres"], timeout=3)
    try:
        if await conn.fetchval("SELECT 1") != 1:
            raise RuntimeError("select 1 did not return 1")
    finally:
        await conn.close()


COMPONENT = Component(
    clients=("asyncpg",),
    name="postgres", group="infra", port_key="postgres", prepare=prepare, check=check, deadline=60,
    match=lambda: f"-D {PGDATA}", env=_env, user=OS_USER,
    ready="roles (`moe`, the migrators, each service's) and database `moe` ensured, connect as `moe`, `SELECT 1`",
    stop_signal=signal.SIGINT,  # "fast" shutdown; SIGTERM would wait for clients to disconnect
)
