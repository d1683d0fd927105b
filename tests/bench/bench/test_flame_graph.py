"""Flame graphs from py-spy's collapsed stacks (bench.flame) and their place in the report."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from bench import flame, report_stages

pytestmark = pytest.mark.unit
EMBED = "embed (moe_core/knowledge/embeddings.py:9)"
COLLAPSED = f"""process 1;run (moe_core/runtime/service.py:10);handle (planner/app.py:5);{EMBED} 60
process 1;run (moe_core/runtime/service.py:10);handle (planner/app.py:7);send (aiokafka/conn.py:3) 30
process 1;run (moe_core/runtime/service.py:10);tiny (x.py:1) 1
process 1;epoll (selectors.py:2) 9
not a line
"""


def test_frames_are_merged_without_line_numbers_and_counted() -> None:
    root = flame.parse(COLLAPSED)
    assert root.count == 100
    run = root.children["process 1"].children["run (moe_core/runtime/service.py)"]
    assert run.count == 91 and run.children["handle (planner/app.py)"].count == 90  # two lines, one frame


def test_svg_widths_follow_the_samples_and_tiny_frames_are_left_out() -> None:
    collapsed = (COLLAPSED + "process 1;run (moe_core/runtime/service.py:10);rare (y.py:1) 1\n"
                 + "process 1;idle (z.py:1) 899\n")
    doc = ET.fromstring(flame.svg(collapsed, "planner"))  # 1000 samples: `rare` is 0.1 %, under MIN_SHARE
    ns = "{http://www.w3.org/2000/svg}"
    frames = {g.find(f"{ns}title").text: float(g.find(f"{ns}rect").get("width"))
              for g in doc.iter(f"{ns}g") if g.find(f"{ns}title") is not None}
    embed = next(w for t, w in frames.items() if t.startswith("embed (moe_core/knowledge/embeddings.py)"))
    send = next(w for t, w in frames.items() if t.startswith("send (aiokafka/conn.py)"))
    assert embed + 0.5 == pytest.approx(2 * (send + 0.5))  # 60 samples against 30
    assert "embed (moe_core/knowledge/embeddings.py) (6.0 %)" in frames
    assert not any(t.startswith(("rare", "tiny")) for t in frames)  # 1 sample of 1000 each


def test_the_report_lists_each_service_with_its_own_frames_and_its_flame_graph() -> None:
    result = {"cpu_profile": {"load": {"requests": 12}, "services": {
        "planner": {"samples": 100, "flame_graph": "latest-profile-planner.svg",
                    "inclusive": [("run (moe_core/runtime/service.py)", 91.0), ("handle (planner/app.py)", 90.0),
                                  ("send (aiokafka/conn.py)", 30.0)]},
        "merger": {"error": "py-spy: permission denied"}}}}
    text = "\n".join(report_stages.profile_lines(result, "../bench/results/"))
    assert "[flame graph](../bench/results/latest-profile-planner.svg)" in text
    assert "`handle (planner/app.py)` 90.0 %" in text and "aiokafka" not in text
    assert "**merger**: py-spy failed" in text
