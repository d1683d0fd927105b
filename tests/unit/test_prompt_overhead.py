"""Each prompt token paid once per request (issue 13): the semantic cache's examples reach the judge, not
every expert (only a lone expert, which may end on the fast path without a judge, gets them) nor the
thinking step; the planner model sees the categories by name."""

from __future__ import annotations

from typing import Any

from merger import synthesis
from moe_core.contracts import (
    EXPERT_CATEGORIES,
    ChatMessage,
    ChatRequest,
    ExpertTask,
    FewShot,
    Plan,
    PlannedTask,
    TaskResult,
    deadline_in,
)
from moe_core.modes import get_mode
from planner import core
from planner.app import task_message

F: dict[str, Any] = {"response_id": "r", "tenant_id": "t", "deadline_at": deadline_in(60), "mode": "moe-orchestrator"}
QUESTION = "Compare a violin and a telescope as they were in 1700: explain their history in detail."
SHOTS = [FewShot(question="Compare a cello and a sundial in 1650?", answer="CACHED ANSWER", distance=0.3)]


def _plan(*categories: str) -> Plan:
    tasks = [PlannedTask(task_id=f"t{i}", category=c, instruction=f"do {c}") for i, c in enumerate(categories, 1)]
    tasks.append(PlannedTask(task_id="g1", kind="graph", category="knowledge_graph", instruction="graph"))
    return Plan(**F, question=QUESTION, tasks=tasks, few_shot=SHOTS)


def _expert_tasks(plan: Plan) -> list[ExpertTask]:
    request = ChatRequest(**F, messages=[ChatMessage(role="user", content=QUESTION)])
    tasks = [task_message(request, plan, t, []) for t in plan.tasks if t.kind == "expert"]
    return [t for t in tasks if isinstance(t, ExpertTask)]


def test_the_examples_go_to_the_judge_once_not_to_every_expert() -> None:
    plan = _plan("general", "science")
    assert [t.few_shot for t in _expert_tasks(plan)] == [[], []]
    results = [TaskResult(**F, task_id=f"t{i}", category=c, content=f"{c} text") for i, c in
               enumerate(("general", "science"), 1)]
    judge = synthesis.judge_messages(plan, results, "notes", get_mode(plan.mode))[1]["content"]
    assert judge.count("CACHED ANSWER") == 1 and judge.count(QUESTION) == 1
    thinking = " ".join(m["content"] for m in synthesis.thinking_messages(plan, results))
    assert "CACHED ANSWER" not in thinking and thinking.count(QUESTION) == 1
    assert "general text" in thinking and "science text" in thinking


def test_a_lone_expert_keeps_the_examples() -> None:
    [task] = _expert_tasks(_plan("general"))
    assert task.few_shot == SHOTS  # a confident lone expert is the answer: no judge sees them otherwise


def test_the_planner_sees_the_categories_by_name() -> None:
    system = core.planner_messages(QUESTION, list(EXPERT_CATEGORIES), 4)[0]["content"]
    assert all(system.count(name) >= 1 for name in EXPERT_CATEGORIES)
    assert not any(description in system for description in EXPERT_CATEGORIES.values())
