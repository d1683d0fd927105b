"""Handler tier: the planner's handler on FastStream's in-memory broker (stores are real: Redis)."""

from __future__ import annotations

import asyncio
import json

import pytest
from faststream.kafka import TestKafkaBroker

from moe_core.contracts import Cancel, ChatMessage, ChatRequest, DeadLetter, ExpertTask, Plan, deadline_in
from tests.support.in_memory import collect, planner_on

pytestmark = pytest.mark.infra  # real Redis (and Kafka where named)


async def test_planner_publishes_plan_and_one_task_per_planned_task(redis, namespace: str) -> None:
    llm, bus = planner_on(namespace, redis, [{"reply": json.dumps({"tasks": [
        {"category": "math", "instruction": "add"}, {"category": "nonsense", "instruction": "x"},
        {"category": "science", "instruction": "explain"}]})}])
    plans = collect(bus, bus.topics.plans, Plan)
    tasks = collect(bus, bus.topics.tasks_expert, ExpertTask)
    letters = collect(bus, bus.topics.deadletter, DeadLetter)
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
    plan = {"tasks": [{"category": "math", "instruction": "add"}]}
    llm, bus = planner_on(namespace, redis, [{"reply": json.dumps(plan), "delay_ms": 3000}])
    plans = collect(bus, bus.topics.plans, Plan)
    request = ChatRequest(response_id=f"r-{namespace}", tenant_id="t", deadline_at=deadline_in(30),
                          mode="moe-orchestrator", messages=[ChatMessage(role="user", content="2+2 and why?")])
    async with TestKafkaBroker(bus.broker):
        planning = asyncio.create_task(bus.publish(request, bus.topics.requests))
        for _ in range(3000):  # until the planner model was called (its embedding and preflight come first)
            if llm.state.scripted.get_calls():
                break
            await asyncio.sleep(0.01)
        assert llm.state.scripted.get_calls(), "the planner model was never called"
        await bus.publish(Cancel(**request.child_fields(), reason="client_disconnected"), bus.topics.cancel)
        await planning  # without the cancel, the plan would be published when the model replies
        await bus.publish(request, bus.topics.requests)  # redelivery: refused, no second call
    assert plans == []
    assert len(llm.state.scripted.get_calls()) == 1
