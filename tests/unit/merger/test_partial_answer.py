"""A request that cannot finish says so plainly: at the deadline, only an expert's or a tool's result may
stand in for the answer; knowledge-graph facts and web snippets (context for the judge) never do."""

from __future__ import annotations

import pytest

from merger import core as merger_core
from moe_core.contracts import Plan, PlannedTask, TaskResult, Usage, deadline_in

pytestmark = pytest.mark.unit


def _plan() -> Plan:
    return Plan(response_id="r", tenant_id="t", deadline_at=deadline_in(30), mode="moe-orchestrator",
                question="What is 17% of 2340?", planner_model="p", usage=Usage(prompt_tokens=10, completion_tokens=5),
                tasks=[PlannedTask(task_id="t1", category="general", instruction="answer"),
                       PlannedTask(task_id="g1", kind="graph", category="knowledge_graph", instruction="facts")])


def _result(task_id: str, kind: str, content: str, category: str) -> TaskResult:
    return TaskResult(response_id="r", tenant_id="t", deadline_at=deadline_in(30), task_id=task_id, kind=kind,  # type: ignore[arg-type]
                      category=category, content=content, confidence="high", usage=Usage(prompt_tokens=3))


def test_graph_facts_alone_are_no_answer() -> None:
    plan = _plan()
    facts = _result("g1", "graph", "Paris -capital_of-> France\nOslo -capital_of-> Norway", "knowledge_graph")
    answer = merger_core.partial_answer(plan, {"g1": facts}, plan.child_fields())
    assert answer.content == "" and "capital_of" not in answer.content
    assert answer.error is not None and answer.error.code == "deadline_exceeded"
    assert answer.error.message == "The request did not finish in time: no answer from general."
    assert answer.finish_reason == "deadline" and answer.missing == ["general"]
    assert answer.usage.prompt_tokens == 13  # what was spent is still counted


def test_an_expert_answer_leads_and_the_gap_is_named() -> None:
    plan = _plan().model_copy(update={"tasks": [
        PlannedTask(task_id="t1", category="general", instruction="a"),
        PlannedTask(task_id="t2", category="math", instruction="b"),
        PlannedTask(task_id="g1", kind="graph", category="knowledge_graph", instruction="facts")]})
    results = {"g1": _result("g1", "graph", "Paris -capital_of-> France", "knowledge_graph"),
               "t1": _result("t1", "expert", "397.8", "general")}
    answer = merger_core.partial_answer(plan, results, plan.child_fields())
    assert answer.error is None
    assert answer.content == "397.8\n\n(Incomplete: no answer in time from: math.)"
