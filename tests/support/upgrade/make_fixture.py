"""Regenerate the upgrade test's fixture from a previous release (docs/upgrade.md):

    .venv/bin/python -m tests.support.upgrade.make_fixture COMMIT   (in a network namespace, like the tests)

checks COMMIT out into a temporary worktree, starts this clone's Postgres and timestamp authority (fleetlib), and
runs tests/support/upgrade/old_release.py with THAT commit's libs/ and services/codex-lineage first on the path:
its own migrations make the audit store in a schema of its own, its own code records three requests and
checkpoints them (timestamped), and writes later messages in its schema. Then pg_dump (plain SQL) of that
schema (its name replaced by SCHEMA_PLACEHOLDER: the test restores it under a name of its own) and the TSA's chain
go next to them into tests/lineage/fixtures/upgrade-<COMMIT>/; the schema is dropped."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import asyncpg

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "lineage" / "fixtures"
sys.path.insert(0, str(REPO / "deploy" / "local"))


def pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    debian = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parent.parent.name))
    if not debian:
        raise SystemExit(f"{name} not found (apt-get install postgresql-client)")
    return str(debian[-1])


SCHEMA_PLACEHOLDER = "upgrade_release_schema"


async def drop_schema(dsn: str, name: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')  # name: upgrade_src_<hex>, made here
    finally:
        await conn.close()


def main(commit: str) -> int:
    from fleetlib import api

    full = subprocess.run(["git", "rev-parse", commit], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()
    out = FIXTURES / f"upgrade-{full[:7]}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    api.ensure_up(["postgres", "tsa"])
    ends = api.endpoints()
    name, dsn = f"upgrade_src_{uuid.uuid4().hex[:10]}", ends["postgres"]
    work = Path(tempfile.mkdtemp(prefix="moe-release-"))
    try:
        subprocess.run(["git", "worktree", "add", "--detach", str(work), full], cwd=REPO, check=True,
                       capture_output=True)
        path = os.pathsep.join([str(work / "libs"), str(work / "services" / "codex-lineage")])
        env = {**os.environ, "PYTHONPATH": path, "PYTHONSAFEPATH": "1"}
        script = Path(__file__).with_name("old_release.py")  # today's script, the release's modules
        subprocess.run([sys.executable, str(script), dsn, name, ends["tsa"], ends["tsa-chain"], str(out)],
                       env=env, check=True, cwd=work)
        dump = subprocess.run([pg_tool("pg_dump"), "--format=plain", "--no-owner", "--no-privileges",
                               f"--schema={name}", dsn], capture_output=True, text=True, check=True).stdout
        (out / "audit.sql").write_text(dump.replace(name, SCHEMA_PLACEHOLDER))
        shutil.copyfile(ends["tsa-chain"], out / "tsa-chain.pem")
        (out / "release.txt").write_text(full + "\n")
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(work)], cwd=REPO, check=False)
        asyncio.run(drop_schema(dsn, name))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "HEAD"))
