"""The bench's targets table (bench.analyze): issue 29's goals, recomputed from a stored result by `bench render`."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from bench import analyze

pytestmark = pytest.mark.unit
LATEST = Path(__file__).resolve().parents[3] / "bench" / "results" / "latest.json"


def _streams(n: int, held: int, dropped: int = 0) -> dict[str, Any]:
    return {"target": "trivial", "streams": n, "held": held, "dropped_frames": dropped, "reordered_frames": 0}


def test_the_streams_target_counts_the_largest_clean_cell() -> None:
    assert analyze.held_streams(None) is None
    assert analyze.held_streams([{**_streams(16, 16), "target": "direct"}]) is None  # no trivial cell ran
    assert analyze.held_streams([_streams(16, 16), _streams(64, 64), _streams(256, 116)]) == 64
    assert analyze.held_streams([_streams(16, 16, dropped=1)]) == 0  # a dropped frame is not held
    assert analyze.held_streams([_streams(16, 16), _streams(256, 256)]) == 256


def test_render_recomputes_the_stored_targets() -> None:
    result = json.loads(LATEST.read_text())
    rows = {t["target"]: t for t in analyze.targets_of(result)}
    assert rows["CPU per full request, all processes incl. infrastructure"]["goal"] == "<= 40 ms"
    assert rows["CPU per full request, all processes incl. infrastructure"]["measured"] == analyze.full_cpu(
        result["summary"])
    better = copy.deepcopy(result)
    others = [s for s in better.get("streams", []) if s["target"] != "trivial"]  # whatever the stored run held
    better["streams"] = [*others, _streams(256, 256)]
    streams = "concurrent SSE streams held, trivial path, 0 frames dropped"
    assert {t["target"]: t for t in analyze.targets_of(better)}[streams]["met"] is True
    better["streams"][-1] = _streams(256, 255)
    assert {t["target"]: t for t in analyze.targets_of(better)}[streams]["measured"] < 256


def _soak(growths: dict[str, float], allowed: float = 3.0) -> dict[str, Any]:
    verdicts = {name: {"second_half_growth_mb": g, "allowed_mb": allowed, "flat": g <= allowed}
                for name, g in growths.items()}
    verdicts["redis"] = {"second_half_growth_mb": 149.0, "allowed_mb": 10.0, "flat": False}  # infrastructure
    fleet = sorted(growths)
    return {"started_at": "2026-11-25T09:30:00+00:00", "config": {"seconds": 300}, "traffic": {"total": 9000},
            "fleet": fleet, "verdicts": verdicts, "fleet_flat": all(verdicts[n]["flat"] for n in fleet)}


def test_the_soak_row_reads_the_soak_that_followed_the_run() -> None:
    row_name = "memory flat in the soak (largest second-half growth of a fleet service, MB)"
    result = json.loads(LATEST.read_text())
    result.pop("soak", None)
    row = {t["target"]: t for t in analyze.targets_of(result)}[row_name]
    assert row["measured"] is None and row["met"] is None and "SOAK=0" in row["note"]
    result["soak"] = analyze.soak_summary(_soak({"planner": 0.6, "gateway": 0.4}))
    row = {t["target"]: t for t in analyze.targets_of(result)}[row_name]
    assert (row["measured"], row["met"]) == (0.6, True)  # Redis, not a fleet service, grew and does not count
    result["soak"] = analyze.soak_summary(_soak({"planner": 6.5, "gateway": 0.4}))
    row = {t["target"]: t for t in analyze.targets_of(result)}[row_name]
    assert (row["measured"], row["met"]) == (6.5, False)
    assert result["soak"]["largest_growth_service"] == "planner"
