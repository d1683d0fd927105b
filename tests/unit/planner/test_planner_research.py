"""Research as a planned task: the planner model is offered research tasks (schema and prompt), a research
item without a query is rejected, several become one, a plan of research alone still gets an answering
expert; through the planner's handler the planned query reaches `tasks.research`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker

from moe_core.contracts import ChatMessage, ChatRequest, ExpertTask, Plan, PlannedTask, ResearchTask, deadline_in
from planner import core, research_tasks
from planner.augment import augment
from planner.settings import PlannerSettings
from tests.support.in_memory import collect, planner_on

pytestmark = pytest.mark.unit
CATEGORIES = ["general", "technical_support"]
KAFKA_QUERY = "Apache Kafka latest release changes"


def _reply(*items: dict[str, Any]) -> str:
    return json.dumps({"tasks": list(items)})


def _research(query: Any = KAFKA_QUERY, **kw: Any) -> dict[str, Any]:
    item = {"kind": "research", "category": "research", "instruction": "Find the release notes", **kw}
    return {**item, "query": query} if query is not None else item


def test_schema_and_prompt_offer_research_tasks_only_when_enabled() -> None:
    item = core.plan_schema(CATEGORIES, 4, research=True)["properties"]["tasks"]["items"]["properties"]
    assert item["kind"]["enum"] == ["expert", "research"] and item["category"]["enum"] == [*CATEGORIES, "research"]
    assert item["query"] == {"type": "string", "minLength": 1, "maxLength": research_tasks.MAX_QUERY_CHARS}
    assert "query" not in core.plan_schema(CATEGORIES, 4)["properties"]["tasks"]["items"]["properties"]
    system = core.planner_messages("q", CATEGORIES, 4, research=True)[0]["content"]
    assert research_tasks.PROMPT in system and "current or external facts" in system
    assert research_tasks.PROMPT not in core.planner_messages("q", CATEGORIES, 4)[0]["content"]


def test_a_research_task_carries_its_query_and_one_without_a_query_is_rejected() -> None:
    expert = {"category": "technical_support", "instruction": "Explain what changed"}
    tasks = core.sanitise(_reply(expert, _research()), CATEGORIES, 4, research=True)
    assert [(t.task_id, t.kind, t.category, t.args) for t in tasks] == [
        ("t1", "expert", "technical_support", {}), ("t2", "research", "research", {"queries": [KAFKA_QUERY]})]
    assert tasks[1].instruction == "Find the release notes"
    for bad in (_research(query=None), _research(query="   "), _research(query=42)):
        tasks = core.sanitise(_reply(expert, bad), CATEGORIES, 4, research=True)
        assert [t.kind for t in tasks] == ["expert"], bad  # rejected, not guessed from the instruction
    # not offered (MOE_PLANNER_RESEARCH_TASKS=false): a research item is dropped like an unknown category
    assert [t.kind for t in core.sanitise(_reply(expert, _research()), CATEGORIES, 4)] == ["expert"]


def test_several_research_tasks_become_one_with_every_query() -> None:
    tasks = core.sanitise(_reply(_research("kafka 4.1 release"), {"category": "general", "instruction": "Sum up"},
                                 _research("KAFKA 4.1 RELEASE"), _research("kafka 4.1 upgrade notes")),
                          CATEGORIES, 4, research=True)
    assert [(t.task_id, t.kind) for t in tasks] == [("t1", "research"), ("t2", "expert")]
    assert tasks[0].args == {"queries": ["kafka 4.1 release", "kafka 4.1 upgrade notes"]}


def _plan(*tasks: PlannedTask) -> Plan:
    return Plan(response_id="r", tenant_id="t", deadline_at=deadline_in(30), mode="moe-orchestrator",
                question="What changed in the latest Kafka release?", tasks=list(tasks))


def test_a_plan_of_research_alone_gets_an_expert_to_answer() -> None:
    request = ChatRequest(response_id="r", tenant_id="t", deadline_at=deadline_in(30), mode="moe-orchestrator",
                          messages=[ChatMessage(role="user", content="What changed in the latest Kafka release?")])
    research = PlannedTask(task_id="t1", kind="research", category="research", instruction="find",
                           args={"queries": [KAFKA_QUERY]})
    shaped = augment(_plan(research), request, PlannerSettings(planner_graph_tasks=False))
    assert [(t.task_id, t.kind, t.category, t.instruction) for t in shaped.tasks] == [
        ("t1", "research", "research", "find"),
        ("t2", "expert", "general", "What changed in the latest Kafka release?")]
    with_expert = _plan(research, PlannedTask(task_id="t2", category="general", instruction="x"))
    assert augment(with_expert, request, PlannerSettings(planner_graph_tasks=False)) == with_expert


@pytest.mark.infra  # real stores
async def test_the_planned_query_goes_to_the_research_stage(redis, namespace: str) -> None:
    reply = _reply({"category": "technical_support", "instruction": "Explain the changes"}, _research())
    llm, bus = planner_on(namespace, redis, [{"reply": reply}], plan_cache_enabled=False)
    plans = collect(bus, bus.topics.plans, Plan)
    research = collect(bus, bus.topics.tasks_research, ResearchTask)
    experts = collect(bus, bus.topics.tasks_expert, ExpertTask)
    question = "What changed in the latest Kafka release?"
    request = ChatRequest(response_id=f"r-{namespace}", tenant_id="t", deadline_at=deadline_in(30),
                          mode="moe-orchestrator", messages=[ChatMessage(role="user", content=question)])
    async with TestKafkaBroker(bus.broker):
        await bus.publish(request, bus.topics.requests)
    [call] = llm.state.scripted.get_calls()
    assert research_tasks.PROMPT in call["messages"][0]["content"]
    assert call["body"]["response_format"]["json_schema"]["schema"]["properties"]["tasks"]["items"][
        "properties"]["kind"]["enum"] == ["expert", "research"]
    [plan] = plans
    assert [(t.task_id, t.kind) for t in plan.tasks] == [("t1", "expert"), ("t2", "research")]
    [task] = research
    assert (task.task_id, task.queries, task.category, task.question) == ("t2", [KAFKA_QUERY], "research", question)
    assert [e.task_id for e in experts] == ["t1"]


@pytest.mark.parametrize(("question", "current"), [
    ("What changed in the latest Kafka release?", True), ("Any news about the Rhine floods?", True),
    ("What is the current price of gold?", True), ("Any headlines on the election this week?", True),
    ("What happens in AI in 2031?", True), ("What is the capital of France?", False),
    ("How does an electric current flow?", False), ("Show the current directory in bash", False),
    ("What happened in 1989 in Berlin?", False), ("What date is 3 weeks from today?", False),
    ("Who will win the 2032 election?", True), ("What will Berlin look like by 2040?", True),
    ("Translate 'room number 2040' into German.", False), ("Is port 2049 used by NFS?", False),
    ("Sum 2031 and 2044.", False),
])
def test_questions_that_ask_for_current_facts(question: str, current: bool) -> None:
    assert research_tasks.asks_for_current_facts(question, now=datetime(2030, 5, 1, tzinfo=UTC)) is current


def test_a_routed_current_question_gets_a_research_task_and_a_model_plan_is_left_as_planned() -> None:
    question = "What changed in the latest Kafka release?"
    request = ChatRequest(response_id="r", tenant_id="t", deadline_at=deadline_in(30), mode="moe-orchestrator",
                          messages=[ChatMessage(role="user", content=question)])
    expert = PlannedTask(task_id="t1", category="technical_support", instruction=question)
    routed = _plan(expert).model_copy(update={"source": "router", "complexity": "trivial"})
    shaped = augment(routed, request, PlannerSettings(planner_graph_tasks=False))
    assert [(t.task_id, t.kind, t.args) for t in shaped.tasks] == [
        ("t1", "expert", {}), ("t2", "research", {"queries": [question]})]
    assert augment(routed, request, PlannerSettings(planner_graph_tasks=False,
                                                    planner_research_tasks=False)).tasks == [expert]
    planned = _plan(expert)  # source llm: the planner model decided there was nothing to search
    assert augment(planned, request, PlannerSettings(planner_graph_tasks=False)).tasks == [expert]
