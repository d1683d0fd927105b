"""The data-health drift flags of one ingest run and the severity ladder (the seed's six flags)."""

from __future__ import annotations

import pytest

from codex_lineage.drift.flags import FLAGS, compute_drift
from codex_lineage.drift.runs import summarise

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("declared", "delta", "shrank", "flags", "severity"), [
    ((10, 10), (10, 10), False, [], "ok"),
    ((0, 0), (0, 0), False, [], "info"),
    ((10, 10), (0, 4), False, ["zero_entities_added"], "crit"),
    ((2, 1), (0, 1), False, ["zero_entities_added"], "warn"),
    ((10, 10), (3, 10), False, ["entity_dedup_suppressed"], "warn"),
    ((10, 10), (14, 10), False, ["entity_overshoot"], "warn"),
    ((10, 10), (10, 14), False, ["relation_overshoot"], "warn"),
    ((10, 200), (10, 150), False, ["relation_to_entity_explosion"], "warn"),
    ((10, 10), (-2, 0), True, ["entity_count_shrank", "zero_entities_added"], "crit"),
])
def test_flags_and_ladder(declared: tuple[int, int], delta: tuple[int, int], shrank: bool, flags: list[str],
                          severity: str) -> None:
    drift = compute_drift(*declared, *delta, shrank=shrank, threshold=0.3, min_declared=5)
    assert drift["flags"] == flags and drift["severity"] == severity
    assert set(flags) <= set(FLAGS)


def test_the_threshold_moves_the_warn_line() -> None:
    assert compute_drift(10, 0, 6, 0, threshold=0.3)["flags"] == ["entity_dedup_suppressed"]
    assert compute_drift(10, 0, 6, 0, threshold=0.5)["flags"] == []


def test_the_summary_counts_runs_by_severity_and_flag() -> None:
    runs = [compute_drift(10, 10, 0, 0), compute_drift(10, 10, 10, 10), compute_drift(2, 1, 0, 1)]
    summary = summarise(runs, 24)
    assert summary["runs"] == 3 and summary["severity"] == "crit"
    assert summary["by_severity"] == {"ok": 1, "info": 0, "warn": 1, "crit": 1}
    assert summary["by_flag"]["zero_entities_added"] == 2 and summary["by_flag"]["entity_overshoot"] == 0
