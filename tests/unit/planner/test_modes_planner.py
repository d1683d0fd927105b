"""Modes in the planner: forced experts, web research first, preflight plans untouched, and the history
an expert gets (the whole conversation with tool calls for agents)."""

from __future__ import annotations

from typing import Any

import pytest

from moe_core.contracts import ChatMessage, ChatRequest, Plan, PlannedTask, deadline_in
from planner.augment import AUGMENTERS, augment
from planner.modes import apply_mode, expert_history
from planner.settings import PlannerSettings

pytestmark = pytest.mark.unit
SETTINGS = PlannerSettings(planner_graph_tasks=False)
TOOL = {"type": "function", "function": {"name": "ls", "parameters": {"type": "object", "properties": {}}}}


def _request(mode: str, **kw: Any) -> ChatRequest:
    messages = kw.pop("messages", [ChatMessage(role="user", content="How do I fix this?")])
    return ChatRequest(response_id="r", tenant_id="t", deadline_at=deadline_in(30), mode=mode, messages=messages,
                       **kw)


def _plan(mode: str, *tasks: tuple[str, str, str], source: str = "llm") -> Plan:
    planned = [PlannedTask(task_id=tid, kind=kind, category=cat, instruction=f"do {cat}")  # type: ignore[arg-type]
               for tid, kind, cat in tasks]
    return Plan(response_id="r", tenant_id="t", deadline_at=deadline_in(30), mode=mode, question="How do I fix this?",
                tasks=planned, source=source)  # type: ignore[arg-type]


def _shape(plan: Plan) -> list[tuple[str, str, str]]:
    return [(t.task_id, t.kind, t.category) for t in plan.tasks]


def test_modes_come_first_among_the_augmenters() -> None:
    assert AUGMENTERS[0] is apply_mode


def test_agent_mode_forces_exactly_code_reviewer_and_technical_support() -> None:
    plan = _plan("moe-orchestrator-agent", ("t1", "expert", "general"), ("t2", "expert", "technical_support"),
                 ("t3", "graph", "knowledge_graph"))
    shaped = apply_mode(plan, _request(plan.mode), SETTINGS)
    assert _shape(shaped) == [("t4", "expert", "code_reviewer"), ("t2", "expert", "technical_support"),
                              ("t3", "graph", "knowledge_graph")]
    assert shaped.tasks[0].instruction == "How do I fix this?"
    assert shaped.tasks[1].instruction == "do technical_support"  # a planned forced expert keeps its task


def test_code_mode_adds_a_code_reviewer_when_missing() -> None:
    plan = _plan("moe-orchestrator-code", ("t1", "expert", "general"))
    assert _shape(apply_mode(plan, _request(plan.mode), SETTINGS)) == [
        ("t1", "expert", "general"), ("t2", "expert", "code_reviewer")]
    has = _plan("moe-orchestrator-code", ("t1", "expert", "code_reviewer"))
    assert apply_mode(has, _request(has.mode), SETTINGS) == has


def test_research_mode_puts_web_research_first() -> None:
    plan = _plan("moe-orchestrator-research", ("t1", "expert", "science"))
    shaped = apply_mode(plan, _request(plan.mode), SETTINGS)
    assert _shape(shaped) == [("t2", "research", "research"), ("t1", "expert", "science")]
    assert shaped.tasks[0].args == {"queries": ["How do I fix this?"]}


@pytest.mark.parametrize("mode", ["moe-orchestrator", "moe-orchestrator-concise", "moe-orchestrator-report",
                                  "moe-orchestrator-plan", "moe-orchestrator-agent-orchestrated", "unknown"])
def test_other_modes_keep_the_plan(mode: str) -> None:
    plan = _plan(mode, ("t1", "expert", "general"), ("t2", "expert", "math"))
    augmented = augment(plan, _request(mode), SETTINGS)
    assert augmented.metadata_filters == {"domain": ["math"]}  # scopes document retrieval (planner.filters)
    assert augmented.model_copy(update={"metadata_filters": {}}) == plan


def test_a_preflight_plan_is_left_alone() -> None:
    plan = _plan("moe-orchestrator-research", ("t1", "tool", "precision"), source="preflight")
    assert apply_mode(plan, _request(plan.mode), SETTINGS) == plan


def test_history_for_agents_is_the_whole_conversation() -> None:
    calls = [{"id": "call_1", "type": "function", "function": {"name": "ls", "arguments": "{}"}}]
    messages = [ChatMessage(role="system", content="You are an agent."), ChatMessage(role="user", content="List"),
                ChatMessage(role="assistant", content="", tool_calls=calls),
                ChatMessage(role="tool", content="a.py", tool_call_id="call_1")]
    agent = _request("moe-orchestrator-agent", messages=messages, tools=[TOOL])
    assert expert_history(agent, 6) == messages
    chat = _request("moe-orchestrator", messages=messages)
    assert expert_history(chat, 6) == [messages[1], messages[2]]
