"""`make keys`, `make key` and `make replay` run through deploy/local/with_fleet_env.py: with the local Postgres
down it says so in one line (exit 2), not with the migration's traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.ports import free_port

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]


def test_a_postgres_that_is_not_running_is_one_line() -> None:
    nothing = free_port()  # nobody listens there: the connection is refused at once
    done = subprocess.run([sys.executable, "deploy/local/with_fleet_env.py", "control-plane", "true"], cwd=REPO,
                          env={**os.environ, "MOE_POSTGRES_PORT": str(nothing)}, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and f"127.0.0.1:{nothing}" in done.stderr and "make up" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_embedded_llm_reads_fleet_env_as_the_services_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """README: overrides go in .data/fleet.env. MOE_LLM_CTX there had no effect on the embedded model (only in the
    environment of `make up`): a new user could not give Claude Code the context it needs."""
    from fleetlib import config, simple

    env_file = tmp_path / "fleet.env"
    env_file.write_text("MOE_LLM_CTX=16384\nexport MOE_LLM_PARALLEL='2'\n")
    monkeypatch.setattr(config, "FLEET_ENV", env_file)
    monkeypatch.delenv("MOE_LLM_CTX", raising=False)
    monkeypatch.setenv("MOE_LLM_PARALLEL", "3")  # the caller's environment wins, as for the services
    env = simple.llm_env()
    assert (env["MOE_LLM_CTX"], env["MOE_LLM_PARALLEL"]) == ("16384", "3")


def test_replay_runs_read_only_without_the_signing_key_or_the_migrator() -> None:
    """`make replay` (issue 47, item 6): codex-lineage's endpoints and anchors, but not its signing key, its writer
    role or the audit store's owner; the audit store's read-only role (codex_lineage.migrate grants it SELECT)."""
    from urllib.parse import urlsplit

    from fleetlib import config, services

    env = services.replay_env()
    for withheld in ("MOE_AUDIT_SIGNING_KEY", "MOE_AUDIT_WRITER_DSN", "MOE_AUDIT_MIGRATOR_DSN",
                     "MOE_AUDIT_CHECKPOINT_FILE"):
        assert withheld not in env or withheld in os.environ, withheld
    assert urlsplit(env["MOE_POSTGRES_DSN"]).username == config.AUDIT_READER_ROLE
    assert env["MOE_AUDIT_PUBLIC_KEY"] and env["MOE_AUDIT_TSA_CHAIN"] and env["MOE_AUDIT_WITNESS_KEY"]
    lineage = services.service_env("codex-lineage")
    assert config.AUDIT_READER_ROLE in lineage["MOE_AUDIT_READER_ROLES"].split(",")  # its SELECT grant
    assert lineage["MOE_AUDIT_SIGNING_KEY"] and "MOE_AUDIT_SIGNING_KEY" not in services.replay_env()
    makefile = (REPO / "Makefile").read_text()
    assert "with_fleet_env.py replay $(PY) -m codex_lineage.replay" in makefile
