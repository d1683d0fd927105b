"""The data-health drift flags of one ingest run and the severity ladder (the seed's six flags)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from codex_lineage.drift.flags import FLAGS, compute_drift
from codex_lineage.drift.runs import DriftSettings, Tally, _ingest_run

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
    tally = Tally()
    for run in runs:
        tally.add(run)
    summary = tally.summary(24)
    assert summary["runs"] == 3 and summary["severity"] == "crit"
    assert summary["by_severity"] == {"ok": 1, "info": 0, "warn": 1, "crit": 1}
    assert summary["by_flag"]["zero_entities_added"] == 2 and summary["by_flag"]["entity_overshoot"] == 0


def _ingested(written: tuple[int, int], before: tuple[int, int], after: tuple[int, int],
              declared_relations: int | None = None) -> dict[str, object]:
    stats = {"declared_entities": written[0], "declared_relations": written[1] if declared_relations is None
             else declared_relations, "written_entities": written[0], "written_relations": written[1],
             "before": {"entities": before[0], "relations": before[1]},
             "after": {"entities": after[0], "relations": after[1]}}
    return {"response_id": "r1", "reason": f"{written[1]} of {stats['declared_relations']} triples written",
            "details": {"stats": stats}}


def _judge(event: dict[str, object], accounted: int = 0) -> dict[str, object]:
    return _ingest_run(event, datetime(2026, 11, 26, tzinfo=UTC), "t", DriftSettings(), accounted)


@pytest.mark.parametrize(("written", "before", "after"), [
    ((2, 2), (40, 30), (40, 32)),  # the healthy fleet: 2 of 2 triples written, both entities known
    ((6, 3), (106, 53), (106, 56)),
    ((2, 2), (40, 30), (40, 30)),  # a fact learned again: merged, nothing grows, nothing is wrong
    ((6, 3), (3, 1), (6, 4)),  # a small graph: of 6 entities at most 3 known, 3 gained
])
def test_an_ingest_among_known_entities_is_healthy(written: tuple[int, int], before: tuple[int, int],
                                                   after: tuple[int, int]) -> None:
    run = _judge(_ingested(written, before, after))
    assert (run["severity"], run["flags"]) == ("ok", [])


@pytest.mark.parametrize(("event", "accounted", "flags", "severity"), [
    (_ingested((0, 0), (40, 30), (40, 30), declared_relations=3), 0, ["nothing_written"], "crit"),
    (_ingested((0, 0), (40, 30), (40, 30), declared_relations=3), 1, ["nothing_written"], "crit"),
    (_ingested((0, 0), (40, 30), (40, 30), declared_relations=3), 3, [], "info"),  # all held or rejected: stated
    (_ingested((6, 3), (0, 0), (0, 0)), 0, ["zero_entities_added"], "crit"),  # an empty graph knows none of them
    (_ingested((6, 3), (2, 1), (2, 4)), 0, ["zero_entities_added"], "warn"),  # 4 at least were new
    (_ingested((6, 3), (100, 50), (97, 53)), 0, ["entity_count_shrank"], "crit"),
    (_ingested((2, 2), (40, 30), (45, 32)), 0, ["entity_overshoot"], "warn"),
])
def test_a_bad_ingest_run_is_still_flagged(event: dict[str, object], accounted: int, flags: list[str],
                                           severity: str) -> None:
    run = _judge(event, accounted)
    assert (run["flags"], run["severity"]) == (flags, severity)
