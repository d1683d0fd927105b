"""The soak's reporting without a fleet: the flat-memory verdict from RSS samples, and its section in
docs/performance.md (replaced by the next soak, never duplicated)."""

from __future__ import annotations

from typing import Any

import pytest

from bench import soak_report

pytestmark = pytest.mark.unit


def _samples(curve: dict[str, Any], seconds: int = 300, step: int = 5) -> list[dict[str, Any]]:
    return [{"t": float(t), "rss_mb": {name: f(t) for name, f in curve.items()}} for t in range(0, seconds + 1, step)]


def test_warm_up_growth_is_allowed_growth_after_it_is_not() -> None:
    samples = _samples({
        "warms up": lambda t: 100 + min(t, 120) * 0.5,  # +60 MB during the first two minutes, then flat
        "noisy": lambda t: 200 + (3 if (t // 5) % 2 else -3),  # jitter, no trend
        "leaks": lambda t: 150 + t * 0.1,  # +6 MB/min throughout
    })
    verdicts = soak_report.verdicts(samples)
    assert verdicts["warms up"]["flat"] is True and verdicts["warms up"]["peak_mb"] == 160
    assert verdicts["noisy"]["flat"] is True
    assert verdicts["leaks"]["flat"] is False
    assert verdicts["leaks"]["slope_mb_per_min"] == pytest.approx(6.0)
    assert verdicts["leaks"]["second_half_growth_mb"] == pytest.approx(15.0)


def test_the_doc_section_is_replaced_not_appended_twice() -> None:
    samples = _samples({"gateway": lambda t: 120.0, "kafka": lambda t: 400 + t})
    result = {"config": {"seconds": 300, "concurrency": 4, "sample_s": 5}, "command": "make soak SOAK=300",
              "duration_s": 301,
              "started_at": "2026-11-23T04:00:00+00:00", "fleet": ["gateway"], "fleet_flat": True,
              "traffic": {"requests": {"full": 10, "cancel": 2}, "total": 12, "errors": {}},
              "verdicts": soak_report.verdicts(samples), "samples": samples}
    section = soak_report.markdown(result)
    assert "| gateway | 120 | 120 | 120 | 120 | +0.00 |" in section and "**growing**" in section  # kafka row
    assert "Verdict: flat" in section
    doc = soak_report.replace_section("# Performance\n\ntext\n", section)
    again = soak_report.replace_section(doc, section.replace("full 10", "full 11"))
    assert again.count("## Soak") == 1 and "full 11" in again and again.startswith("# Performance\n\ntext\n")
