"""Live events (progress, answer deltas) exist for streaming clients only: a request that does not stream
produces none of them, and everything it inherits from the request says so."""

from __future__ import annotations

from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker

from moe_core.contracts import Answer, AnswerDelta, ChatMessage, ChatRequest, Plan, PlannedTask, Progress, deadline_in
from moe_core.runtime.bus import Bus
from moe_core.runtime.settings import FleetSettings

pytestmark = pytest.mark.unit


def _request(stream: bool) -> ChatRequest:
    return ChatRequest(response_id=f"r-{stream}", tenant_id="t", deadline_at=deadline_in(30), mode="moe-orchestrator",
                       messages=[ChatMessage(role="user", content="hi")], stream=stream, live=stream)


def _collect(into: list[Any]) -> Any:
    def handler(m: dict[str, Any]) -> None:
        into.append(m)
    return handler


async def test_a_request_that_does_not_stream_publishes_no_live_events(namespace: str) -> None:
    bus = Bus(FleetSettings(topic_namespace=namespace, service_name="live-test"))
    seen: dict[str, list[Any]] = {"progress": [], "deltas": [], "answers": []}
    for name in seen:
        bus.broker.subscriber(getattr(bus.topics, name))(_collect(seen[name]))
    async with TestKafkaBroker(bus.broker):
        for stream in (True, False):
            request = _request(stream)
            plan = Plan(**request.child_fields(), mode=request.mode, question="hi",
                        tasks=[PlannedTask(task_id="t1", category="general", instruction="hi")])
            assert plan.live is stream  # inherited down the pipeline
            await bus.publish(Progress(**plan.child_fields(), stage="planner", event="planned"), bus.topics.progress)
            await bus.publish(AnswerDelta(**plan.child_fields(), seq=0, content="Hel"), bus.topics.deltas)
            await bus.publish(Answer(**plan.child_fields(), mode=request.mode, content="Hello"), bus.topics.answers)
    assert [m["response_id"] for m in seen["progress"]] == ["r-True"]
    assert [m["response_id"] for m in seen["deltas"]] == ["r-True"]
    assert [m["response_id"] for m in seen["answers"]] == ["r-True", "r-False"]  # the answer always goes
