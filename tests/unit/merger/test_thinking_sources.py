"""What the thinking step reads of each source (issue 52): an expert's key message, the graph's, the web's and a
tool's results whole; the judge still reads every source whole."""

from __future__ import annotations

from typing import Any

import pytest

from merger import synthesis
from moe_core.contracts import Plan, PlannedTask, TaskResult, deadline_in
from moe_core.llm.modes import get_mode

pytestmark = pytest.mark.unit
ENV: dict[str, Any] = {"response_id": "r1", "tenant_id": "t"}
LONG = " ".join(f"w{i}" for i in range(200))  # an answer of a real length: 200 words
FACTS = "Knowledge graph facts (trust in brackets):\n" + "\n".join(f"- Fact{i} IS_A Kind{i} [1.00]" for i in range(20))


def _plan(*tasks: tuple[str, str, str]) -> Plan:
    planned = [PlannedTask(task_id=tid, kind=kind, category=cat, instruction=f"do {cat}")  # type: ignore[arg-type]
               for tid, kind, cat in tasks]
    return Plan(**ENV, deadline_at=deadline_in(60), mode="moe-orchestrator", question="What about tides?",
                tasks=planned)


def _res(tid: str, cat: str, content: str, kind: str = "expert", **kw: Any) -> TaskResult:
    return TaskResult(**ENV, deadline_at=deadline_in(60), task_id=tid, kind=kind, category=cat,  # type: ignore[arg-type]
                      content=content, confidence="high", **kw)


def test_the_thinking_step_reads_each_experts_key_message_and_the_judge_every_word() -> None:
    plan = _plan(("t1", "expert", "general"), ("t2", "expert", "science"), ("g1", "graph", "knowledge_graph"))
    results = [_res("t1", "general", LONG), _res("t2", "science", "Gravity.\n\nTwo bulges."),
               _res("g1", "knowledge_graph", FACTS, kind="graph")]
    thinking = synthesis.thinking_messages(plan, results)[1]["content"]
    cut = " ".join(f"w{i}" for i in range(synthesis.THINKING_SOURCE_WORDS)) + " [...]"
    assert f"#2 expert/general, high:\n{cut}\n\n" in thinking and f"w{synthesis.THINKING_SOURCE_WORDS}" not in thinking
    assert "#3 expert/science, high:\nGravity.\n\nTwo bulges." in thinking  # short: whole, its lines kept
    assert FACTS in thinking and "What about tides?" in thinking  # the graph's facts whole, the question
    judge = synthesis.judge_messages(plan, results, "notes", get_mode("moe-orchestrator"))[1]["content"]
    assert LONG in judge and FACTS in judge and "[...]" not in judge


def test_a_tagged_core_finding_is_the_key_message() -> None:
    plan = _plan(("t1", "expert", "reasoning"), ("t2", "expert", "general"))
    reasoning = _res("t1", "reasoning", f"All men are mortal.\n\n{LONG}", data={"core_finding": "All men are mortal."})
    thinking = synthesis.thinking_messages(plan, [reasoning, _res("t2", "general", "Yes.")])[1]["content"]
    assert "#1 reasoning/reasoning, high:\nAll men are mortal.\n\n#2" in thinking and "w0" not in thinking


def test_web_results_and_tool_figures_are_read_whole() -> None:
    web, tool = f"[1] {LONG}", "SHA-256('abc') = ba7816bf"
    plan = _plan(("t1", "expert", "general"), ("r1", "research", "research"), ("m1", "tool", "hash"))
    results = [_res("t1", "general", LONG), _res("r1", "research", web, kind="research"),
               _res("m1", "hash", tool, kind="tool")]
    thinking = synthesis.thinking_messages(plan, results)[1]["content"]
    assert web in thinking and tool in thinking and thinking.count("[...]") == 1
