"""The profile summary of `make bench` (bench.profile.summarise): the top frames of each service, with threads
that only sleep left out (py-spy's --nonblocking sampling counts a sleeping thread like a running one)."""

from __future__ import annotations

import pytest

from bench.profile import summarise

pytestmark = pytest.mark.unit
ROOT = "process 1:\"python -m guardrail\";run (moe_core/runtime/service.py:146)"
WORK = f"{ROOT};Guard.check (guardrail/app.py:40);Pattern.search (re/__init__.py:176) 30"
PROCESS = "process 1:\"python -m guardrail\""
SLEEP = f"{PROCESS};Thread.run (threading.py:975);exit_with.<locals>.watch (moe_core/runtime/service.py:127) 70"


def test_a_sleeping_watcher_is_not_counted() -> None:
    summary = summarise(f"{WORK}\n{SLEEP}\n")
    assert summary["samples"] == 30
    assert summary["own"] == [("Pattern.search (re/__init__.py)", 100.0)]
    assert all("exit_with" not in frame for frame, _ in summary["inclusive"])


def test_work_in_the_same_function_above_a_sleep_is_counted() -> None:
    busy = f"{PROCESS};exit_with.<locals>.watch (moe_core/runtime/service.py:129);kill (os:0) 5"
    summary = summarise(f"{WORK}\n{busy}\n")
    assert summary["samples"] == 35
    assert ("kill (os)", round(100 * 5 / 35, 1)) in summary["own"]
