"""The before/after section of the bench's report (bench.report_before_after): issue 29's baseline run beside the
run being reported, path by path and process by process, from the stored results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import report, report_before_after

pytestmark = pytest.mark.unit
RESULTS = Path(__file__).resolve().parents[3] / "bench" / "results"


def _run(cpu: dict[str, float], p50: float, planner_handlers: dict[str, float]) -> dict[str, Any]:
    return {
        "machine": {"cpu": "CPU", "cores": 2},
        "summary": [{"target": "full", "stream": False, "concurrency": 1, "cpu_ms_per_request": cpu}],
        "added_latency_ms": [{"target": "full", "stream": False, "concurrency": 1, "p50": p50}],
        "sustained": {"throughput_rps": 12.3},
        "kafka_messages_per_request": {"full": {"total": 10}},
        "stages": [{"target": "full", "concurrency": 1, "services": {"planner": {
            "handlers": {t: {"ms_per_request": ms} for t, ms in planner_handlers.items()},
            "stores": {"redis": {"per_request": 9.9}}}}}],
    }


def test_each_process_and_stage_reads_before_arrow_after() -> None:
    before = _run({"planner": 30.7, "chroma": 26.4, "llm": 2.2, "load generator": 0.8}, 117.2, {"requests": 51.4})
    after = _run({"planner": 15.7, "control-plane": 1.6, "chroma": 1.0, "llm": 0.8}, 38.8,
                 {"requests": 21.1, "cache-entries": 595.7})  # the write-behind's batches: off the request path
    text = "\n".join(report_before_after.lines(after, before))
    assert "| full | 117.2 → 38.8 | 57.1 → 18.3 | - → - | 10 → 10 |" in text  # no llm, no load generator
    assert "| planner | 30.7 → 15.7 |" in text and "| control-plane | - → 1.6 |" in text
    assert "| chroma | 26.4 → 1.0 |" in text  # the infrastructure after the fleet's processes
    assert text.index("| planner |") < text.index("| chroma |")
    assert "| planner | 51.4 → 21.1 | 9.9 → 9.9 | - → - | - → - |" in text
    assert "Sustained full pipeline (req/s at concurrency 64): 12.3 → 12.3." in text


def test_the_report_shows_the_stored_baseline_beside_the_latest_run() -> None:
    latest = json.loads((RESULTS / "latest.json").read_text())
    baseline = report_before_after.load()
    assert baseline is not None and "f9ca724" in baseline["baseline_of"]
    page = report.markdown(latest)
    assert "### Before and after: issue 29's baseline run against this one" in page
    full = next(r for r in baseline["summary"] if r["target"] == "full" and not r["stream"] and r["concurrency"] == 1)
    assert round(sum(v for k, v in full["cpu_ms_per_request"].items() if k not in ("llm", "load generator")), 1) \
        == 116.9  # the issue's "117 ms of CPU per full request"
    assert "| full | 117.2 → " in page


def test_without_a_baseline_there_is_no_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_before_after, "BASELINE", tmp_path / "none.json")
    latest = json.loads((RESULTS / "latest.json").read_text())
    assert report_before_after.lines(latest) == []
    assert "Before and after" not in report.markdown(latest)
