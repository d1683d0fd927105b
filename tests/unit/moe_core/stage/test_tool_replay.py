"""Tool results replayed as recorded (moe_core.stage.replay): a replay's tool, research and graph tasks answered
with the recorded results when their instruction is the recorded one, refused naming the task otherwise; expert
tasks and ordinary requests untouched. And the planner takes the recorded plan's few-shot examples."""

from __future__ import annotations

from typing import Any

import pytest

from moe_core.contracts import ChatMessage, ChatRequest, ExpertTask, FewShot, GraphTask, ToolTask, deadline_in
from moe_core.stage.replay import instruction_digest, recorded_result, recorded_results
from planner.app import few_shot
from planner.semantic_cache import Lookup

pytestmark = pytest.mark.unit
ENVELOPE = {"response_id": "r1", "tenant_id": "acme", "deadline_at": deadline_in(60)}
RECORDED_GRAPH = {**ENVELOPE, "message_type": "GraphTask", "task_id": "t2", "question": "Why eclipses?"}
RECORDED_RESULT = {**ENVELOPE, "task_id": "t2", "kind": "graph", "category": "knowledge_graph",
                   "content": "Knowledge graph facts:\n- moon COVERS sun [0.90]", "confidence": "medium",
                   "data": {"facts": [{"id": "f1"}], "cached": False}, "duration_ms": 12.5,
                   "sources": [{"kind": "graph", "ref": "f1"}], "model_outputs": None}
EXPERT_RESULT = {**ENVELOPE, "task_id": "t1", "kind": "expert", "category": "general", "content": "The moon."}


def _replayed(**fields: Any) -> list[Any]:
    return recorded_results([RECORDED_GRAPH, {**ENVELOPE, "message_type": "ExpertTask", "task_id": "t1",
                                              "category": "general", "instruction": "Explain", "question": "q"}],
                            [RECORDED_RESULT, {**RECORDED_RESULT, "content": "a redelivery, later"}, EXPERT_RESULT])


def test_the_record_yields_the_tool_results_with_their_instruction_digests() -> None:
    [graph] = _replayed()  # the expert task is re-executed (its model calls replayed), not answered whole
    task = GraphTask(**{k: v for k, v in RECORDED_GRAPH.items() if k != "message_type"})
    assert (graph.task_id, graph.kind, graph.category) == ("t2", "graph", "knowledge_graph")
    assert graph.instruction == instruction_digest(task) and graph.instruction.startswith("sha256:")
    assert graph.result["content"] == RECORDED_RESULT["content"] and "response_id" not in graph.result


def test_a_replayed_graph_task_is_answered_from_the_record() -> None:
    task = GraphTask(**{**ENVELOPE, "response_id": "replay-1"}, task_id="t2", question="Why eclipses?",
                     as_recorded_results=_replayed())
    result = recorded_result("graph-rag", task)
    assert result is not None and result.from_record and result.error is None
    assert (result.response_id, result.task_id, result.kind, result.category) == ("replay-1", "t2", "graph",
                                                                                  "knowledge_graph")
    assert (result.content, result.data, result.duration_ms) == (RECORDED_RESULT["content"], RECORDED_RESULT["data"],
                                                                  12.5)
    assert [s.ref for s in result.sources] == ["f1"]
    assert result.as_recorded_results == task.as_recorded_results  # passed on like every child field


def test_a_differing_instruction_or_an_unrecorded_task_is_named() -> None:
    other = GraphTask(**ENVELOPE, task_id="t2", question="Why tides?", as_recorded_results=_replayed())
    result = recorded_result("graph-rag", other)
    assert result is not None and not result.from_record and result.content == ""
    assert result.error is not None and result.error.startswith(
        "replay as recorded: graph-rag task t2: its instruction differs from the recorded one (sha256:")
    tool = ToolTask(**ENVELOPE, task_id="t3", tool="calculate", args={"expression": "2+2"},
                    as_recorded_results=_replayed())
    missing = recorded_result("mcp", tool)
    assert missing is not None and missing.error == "replay as recorded: mcp task t3: the record holds no result of it"


def test_expert_tasks_and_ordinary_requests_run() -> None:
    expert = ExpertTask(**ENVELOPE, task_id="t1", category="general", instruction="Explain", question="q",
                        as_recorded_results=_replayed())
    assert recorded_result("expert-worker", expert) is None
    assert recorded_result("graph-rag", GraphTask(**ENVELOPE, task_id="t2", question="Why eclipses?")) is None
    assert recorded_result("graph-rag", None) is None


def test_the_planner_takes_the_recorded_few_shot_examples_in_a_replay_as_recorded() -> None:
    cached = Lookup(few_shot=[FewShot(question="today's neighbour", answer="x", distance=0.2)])
    asked = {**ENVELOPE, "mode": "moe-orchestrator", "messages": [ChatMessage(role="user", content="q")]}
    recorded = [FewShot(question="then", answer="y", distance=0.1)]
    assert few_shot(ChatRequest(**asked), cached) == cached.few_shot
    assert few_shot(ChatRequest(**asked, recorded_few_shot=recorded), cached) == recorded
    assert few_shot(ChatRequest(**asked, recorded_few_shot=[]), cached) == []  # none then: none now
