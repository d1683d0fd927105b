"""The Neo4j image's start (deploy/containers/neo4j/start.py) sets a generated password that begins with "-": the
password follows "--", so neo4j-admin takes it as the password, not as an option it refuses (a CI compose stage's
Neo4j restarted for ever on "-f7tAbg1...": exit 64). neo4j-admin with that very argument list, in the image,
changed the password (checked by hand with podman; the compose stage runs the image itself)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.unit
START = Path(__file__).resolve().parents[2] / "deploy" / "containers" / "neo4j" / "start.py"


def test_a_password_beginning_with_a_dash_follows_the_end_of_options(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("neo4j_start", START)
    assert spec is not None and spec.loader is not None
    start = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(start)
    runs: list[list[str]] = []

    def run(argv: list[str], **_: Any) -> None:
        runs.append(argv)

    def execvpe(*_: Any) -> None:
        raise SystemExit(0)  # where the server would start

    monkeypatch.setattr(start, "CONF", str(tmp_path / "neo4j.conf"))
    monkeypatch.setattr(start.subprocess, "run", run)
    monkeypatch.setattr(start.os, "execvpe", execvpe)
    monkeypatch.setattr(start.os.path, "exists", lambda _: False)  # a first start: no auth.ini, no databases
    monkeypatch.setenv("NEO4J_AUTH", "neo4j/-f7tAbg1inD5NGVUjgRriahYwngltL0W")
    with pytest.raises(SystemExit):
        start.main()
    [argv] = runs
    assert argv[-3:] == ["set-initial-password", "--", "-f7tAbg1inD5NGVUjgRriahYwngltL0W"], argv
