"""The local fleet's logs stay bounded: a large log is set aside when its component starts again."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fleetlib import config, proc

pytestmark = pytest.mark.unit


def test_a_log_past_the_limit_is_set_aside_once_and_the_older_one_dropped(tmp_path: Path) -> None:
    log = tmp_path / "kafka.log"
    assert not proc.rotate(log, limit=10)  # no log yet
    log.write_bytes(b"x" * 10)
    assert not proc.rotate(log, limit=10) and log.exists()  # at the limit: kept
    (tmp_path / "kafka.log.1").write_bytes(b"older")
    log.write_bytes(b"y" * 11)
    assert proc.rotate(log, limit=10)
    assert not log.exists() and (tmp_path / "kafka.log.1").read_bytes() == b"y" * 11


def test_a_component_starts_with_a_fresh_log_when_its_old_one_is_large(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "LOGS", tmp_path / "logs")
    monkeypatch.setattr(config, "RUN", tmp_path / "run")
    monkeypatch.setattr(config, "LOG_ROTATE_BYTES", 100)
    (tmp_path / "logs").mkdir()
    old = config.log_path("rotating")
    old.write_bytes(b"z" * 200)
    pid = proc.spawn("rotating", [sys.executable, "-c", "print('hello from the new run')"])
    proc._children["rotating"].wait(timeout=30)
    assert (tmp_path / "logs" / "rotating.log.1").read_bytes() == b"z" * 200
    assert "hello from the new run" in old.read_text() and b"z" * 200 not in old.read_bytes()
    assert config.pid_path("rotating").read_text().strip() == str(pid)
