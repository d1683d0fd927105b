"""Handler tier: the planner's handler on FastStream's in-memory broker (stores are real: Redis)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from faststream.kafka import TestKafkaBroker

from moe_core.bus import Bus
from moe_core.contracts import Cancel, ChatMessage, ChatRequest, DeadLetter, ExpertTask, Plan, deadline_in
from moe_core.inference import InferenceClient, InferenceConfig
from planner.app import create_app
from planner.settings import PlannerSettings
from tests.support.scripted_llm import create_app as scripted_app

pytestmark = pytest.mark.unit


def _planner(namespace: str, redis: Any, rule: dict[str, Any]) -> tuple[Any, Bus]:
    """The planner on the in-memory broker, its model scripted by one rule. These tests are about the
    planner model's plan: the Chroma shortcuts (cache, router), the trivial route and the graph task
    augmenter are off."""
    llm = scripted_app({"models": ["p"], "rules": [rule]})
    settings = PlannerSettings(topic_namespace=namespace, semantic_cache_enabled=False, router_enabled=False,
                               planner_skip_trivial=False, planner_graph_tasks=False,
                               inference_servers='[{"name":"s","url":"http://s","models":["p"]}]')
    inference = InferenceClient(InferenceConfig.from_settings(settings),
                                httpx.AsyncClient(transport=httpx.ASGITransport(app=llm)))
    bus = Bus(settings)
    create_app(settings, bus=bus, inference=inference, redis=redis, manage_broker=False)
    return llm, bus


async def test_planner_publishes_plan_and_one_task_per_planned_task(redis, namespace: str) -> None:
    llm, bus = _planner(namespace, redis, {"reply": json.dumps({"tasks": [
        {"category": "math", "instruction": "add"}, {"category": "nonsense", "instruction": "x"},
        {"category": "science", "instruction": "explain"}]})})
    plans: list[Plan] = []
    tasks: list[ExpertTask] = []
    letters: list[DeadLetter] = []
    bus.broker.subscriber(bus.topics.plans)(lambda m: plans.append(Plan.model_validate(m)))
    bus.broker.subscriber(bus.topics.tasks_expert)(lambda m: tasks.append(ExpertTask.model_validate(m)))
    bus.broker.subscriber(bus.topics.deadletter)(lambda m: letters.append(DeadLetter.model_validate(m)))
    request = ChatRequest(response_id=f"r-{namespace}", tenant_id="t", deadline_at=deadline_in(30),
                          mode="moe-orchestrator", messages=[ChatMessage(role="user", content="2+2 and why?")])
    async with TestKafkaBroker(bus.broker) as broker:
        await bus.publish(request, bus.topics.requests)
        await bus.publish(request, bus.topics.requests)  # redelivery: same plan, no second model call
        await broker.publish(b'{"not": "a request"}', bus.topics.requests, key=b"r-bad")
    assert [t.category for t in plans[0].tasks] == ["math", "science"]
    assert plans[0].model_dump(exclude={"trace"}) == plans[1].model_dump(exclude={"trace"})
    assert len(llm.state.scripted.get_calls()) == 1
    # a plan's tasks go out side by side: their order on the topic is not part of the contract
    assert sorted((t.task_id, t.category, t.response_id) for t in tasks[:2]) == [
        ("t1", "math", request.response_id), ("t2", "science", request.response_id)]
    assert [(d.response_id, d.error_type) for d in letters] == [("r-bad", "validation_error")]
    assert "ChatRequest" in letters[0].reason


async def test_a_cancel_stops_the_planner_model_call_and_nothing_is_published(redis, namespace: str) -> None:
    """The client went away while the planner model was thinking: its call is cancelled, no plan goes out,
    and a redelivered request is refused without a model call."""
    llm, bus = _planner(namespace, redis, {"reply": json.dumps({"tasks": [{"category": "math", "instruction": "add"}]}),
                                           "delay_ms": 3000})
    plans: list[Plan] = []
    bus.broker.subscriber(bus.topics.plans)(lambda m: plans.append(Plan.model_validate(m)))
    request = ChatRequest(response_id=f"r-{namespace}", tenant_id="t", deadline_at=deadline_in(30),
                          mode="moe-orchestrator", messages=[ChatMessage(role="user", content="2+2 and why?")])
    async with TestKafkaBroker(bus.broker):
        planning = asyncio.create_task(bus.publish(request, bus.topics.requests))
        for _ in range(200):  # until the planner model was called
            if llm.state.scripted.get_calls():
                break
            await asyncio.sleep(0.01)
        await bus.publish(Cancel(**request.child_fields(), reason="client_disconnected"), bus.topics.cancel)
        await planning  # without the cancel, the plan would be published when the model replies
        await bus.publish(request, bus.topics.requests)  # redelivery: refused, no second call
    assert plans == []
    assert len(llm.state.scripted.get_calls()) == 1
