"""A service started for a test session stops by itself when that session dies (MOE_EXIT_WITH_PID)."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit


def test_a_process_watching_its_parent_stops_when_the_parent_is_gone() -> None:
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    child = subprocess.Popen([sys.executable, "-c", (
        "import time\nfrom moe_core.runtime.service import exit_with\n"
        f"exit_with({parent.pid}, poll_s=0.05, grace_s=5)\ntime.sleep(60)\n")])
    try:
        parent.wait(10)  # reaped: the pid is gone
        assert child.wait(120) == -signal.SIGTERM  # a generous bound: importing on a loaded machine
    finally:
        child.kill()
