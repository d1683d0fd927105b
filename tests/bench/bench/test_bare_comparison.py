"""The headline is the product (issue 52 item 1): `make bench`'s profiles run the fleet with the record and learning,
then the same cells on a fleet without them; the report sets both side by side and the targets name both figures.
From a stored result (no fleet is started here)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from bench import analyze, config, report, report_bare

pytestmark = pytest.mark.unit
LATEST = Path(__file__).resolve().parents[3] / "bench" / "results" / "latest.json"
WITHOUT = "CPU per full request, all processes, without the record and learning"


def test_the_default_profiles_run_the_product_and_the_same_cells_without_the_record_and_learning() -> None:
    for cfg in (config.parse([]), config.parse(["--quick"])):
        assert (cfg.record, cfg.learning, cfg.bare) == (True, True, True)
        bare = cfg.without_record_and_learning()
        assert (bare.record, bare.learning, bare.bare, bare.litellm, bare.docs) == (False, False, False, False, False)
        same = ("paths", "concurrency", "runs", "stream", "cell_seconds", "cell_requests", "warmup",
                "sustain_seconds", "token_samples")
        assert {k: getattr(bare, k) for k in same} == {k: getattr(cfg, k) for k in same}
    assert config.parse(["--no-record", "--no-learning"]).bare is False  # nothing to compare with
    assert config.parse(["--no-bare"]).bare is False and config.parse(["--no-record"]).learning is True


def _with_bare(cpu_scale: float) -> dict[str, Any]:
    """The stored run as the product, and a copy of it as the bare fleet with its CPU scaled."""
    result = json.loads(LATEST.read_text())
    result["config"] |= {"record": True, "learning": True}
    bare = copy.deepcopy(result)
    for row in bare["summary"]:
        row["cpu_ms_per_request"] = {k: round(v * cpu_scale, 2) for k, v in (row["cpu_ms_per_request"] or {}).items()}
    bare |= {"namespace": "bench0bare", "duration_s": 100.0}
    result["bare"] = analyze.bare_part(bare)
    return result


def test_the_report_sets_the_same_cells_side_by_side_and_the_targets_name_both_figures() -> None:
    result = _with_bare(0.5)
    rows = {(r[0], r[1], r[2]): r for r in report_bare.comparison(result)}
    full = next(s for s in result["summary"] if s["target"] == "full" and not s["stream"] and s["concurrency"] == 1)
    with_cpu = report_bare.fleet_cpu(full)
    assert with_cpu is not None
    row = rows[("full", "no", "1")]
    assert float(row[3]) == pytest.approx(with_cpu, abs=0.11)
    assert float(row[4]) == pytest.approx(with_cpu / 2, abs=0.11)  # the bare fleet's figure beside it
    assert float(row[5]) == pytest.approx(with_cpu / 2, abs=0.2)  # the difference
    targets = {t["target"]: t for t in analyze.targets_of(result)}
    assert targets[WITHOUT]["measured"] == analyze.full_cpu(result["bare"]["summary"])
    assert targets[WITHOUT]["goal"] == "<= 25 ms"
    md = report.markdown(result)
    assert "### With and without the record and learning" in md and "`bench0bare`" in md
    assert "| full | no | 1 |" in md


def test_a_run_without_the_bare_fleet_says_so() -> None:
    result = json.loads(LATEST.read_text())
    result.pop("bare", None)
    result["config"] |= {"record": True, "learning": False}
    targets = {t["target"]: t for t in analyze.targets_of(result)}
    assert targets[WITHOUT]["measured"] is None and "--no-bare" in targets[WITHOUT]["note"]
    md = report.markdown(result)
    assert "The fleet ran with the record (codex-lineage); no cells without them in this run." in md
