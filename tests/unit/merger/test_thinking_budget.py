"""The thinking step's notes are paid twice, as its completion and in the judge's prompt (issue 52): a model that
writes more than its four short lines is cut at the step's budget, and the judge reads no more of them than that.
Real Redis, the merger's handlers on the in-memory broker, scripted models."""

from __future__ import annotations

from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker

from merger.settings import MergerSettings
from tests.unit.merger.test_merger_handler import Harness

pytestmark = pytest.mark.infra
LONG = " ".join(f"w{i}" for i in range(200))


async def test_rambling_notes_are_cut_at_the_budget_before_the_judge_reads_them(redis: Any, namespace: str) -> None:
    budget = MergerSettings().thinking_max_tokens
    rules = [{"model": "think-model", "reply": f"notes {LONG}"},
             {"model": "judge-model", "reply": "Tides follow the Moon."}]
    h = Harness(namespace, redis, rules, research_fallback=False)
    async with TestKafkaBroker(h.bus.broker):
        plan = h.plan(("t1", "expert", "general"), ("t2", "expert", "science"), ("g1", "graph", "knowledge_graph"))
        await h.send(plan,
                     h.result("t1", "general", LONG, "high"), h.result("t2", "science", "Gravity.", "medium"),
                     h.result("g1", "knowledge_graph", "Moon CAUSES Tide", kind="graph"))  # an unsure part: it thinks
    [think] = h.calls("think-model")
    assert think["max_tokens"] == budget < 200 and "w199" not in think["messages"][1]["content"]  # key messages
    [judge] = h.calls("judge-model")
    notes = judge["messages"][1]["content"].split("Thinking so far:\n", 1)[1].split("\n\nSources:", 1)[0]
    assert notes.split() == ["notes", *LONG.split()[:budget - 1]]  # cut at the budget, no more
    assert LONG in judge["messages"][1]["content"]  # the judge reads the expert's answer whole
    [answer] = h.out["answers"]
    assert answer.reasoning == notes and answer.content == "Tides follow the Moon."
