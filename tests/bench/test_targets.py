"""The bench's targets table (bench.analyze): issue 29's goals, recomputed from a stored result by `bench render`."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from bench import analyze

pytestmark = pytest.mark.unit
LATEST = Path(__file__).resolve().parents[2] / "bench" / "results" / "latest.json"


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
