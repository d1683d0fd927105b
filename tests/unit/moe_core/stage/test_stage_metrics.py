"""The runtime's metrics, one observation per message (issue 29): every consumed message is one `moe_stage_seconds`
observation labelled with how its handling ended, every published message one `moe_messages_published_total`
increment, and FastStream's Prometheus middleware (several observations per message, `faststream_*`) is gone.
On the in-memory broker; the stage needs no store."""

from __future__ import annotations

from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker

from moe_core.contracts import Answer, TaskResult, ToolTask, deadline_in, headers
from moe_core.runtime.bus import Bus
from moe_core.runtime.observability.metrics import REGISTRY
from moe_core.runtime.settings import FleetSettings
from moe_core.stage.resources import Resources
from moe_core.stage.runtime import create_stage_app
from moe_core.stage.spec import Consumes, Stage

pytestmark = pytest.mark.unit


class MeteredSettings(FleetSettings):
    service_name: str = "metered"
    retry_max_attempts: int = 1  # a transient failure is dead-lettered at once (retries_exhausted)


class Metered:
    """Answers a ToolTask with a TaskResult; `boom` fails for good, `offline` transiently."""

    def __init__(self, res: Resources) -> None:
        self.bus = res.bus

    async def handle(self, task: ToolTask) -> None:
        if task.tool == "boom":
            raise RuntimeError("boom")
        if task.tool == "offline":
            raise ConnectionError("the store is away")
        await self.bus.publish(TaskResult(**task.child_fields(), task_id=task.task_id, category=task.tool,
                                          content=task.tool), self.bus.topics.results)


METERED = Stage(name="metered", settings=MeteredSettings, build=Metered, summary="tool tasks -> results",
                consumes=(Consumes("tasks_mcp", ToolTask, "handle"),), publishes=("results",), needs=())


def _task(rid: str, tool: str = "echo") -> ToolTask:
    return ToolTask(response_id=rid, tenant_id="t", deadline_at=deadline_in(30), task_id="t1", tool=tool)


def _handled(service: str, topic: str) -> dict[str, float]:
    """Messages of the topic the service handled, by outcome (moe_stage_seconds_count)."""
    out: dict[str, float] = {}
    for family in REGISTRY.collect():
        if family.name != "moe_stage_seconds":
            continue
        for sample in family.samples:
            labels = sample.labels
            if sample.name.endswith("_count") and labels["service"] == service and labels["topic"] == topic:
                out[labels["outcome"]] = out.get(labels["outcome"], 0) + sample.value
    return out


def _published(service: str, topic: str) -> float:
    return REGISTRY.get_sample_value("moe_messages_published_total", {"service": service, "topic": topic}) or 0.0


async def test_each_consumed_message_is_one_observation_by_outcome_and_each_publish_one_increment(
        namespace: str) -> None:
    settings = MeteredSettings(topic_namespace=namespace)
    bus = Bus(settings)
    create_stage_app(METERED, settings, bus=bus, manage_broker=False)
    results: list[Any] = []
    bus.broker.subscriber(bus.topics.results)(lambda m: results.append(m))
    async with TestKafkaBroker(bus.broker) as broker:
        for i in range(3):
            await bus.publish(_task(f"ok-{i}"), bus.topics.tasks_mcp)
        await bus.publish(_task("boom", tool="boom"), bus.topics.tasks_mcp)
        await bus.publish(_task("offline", tool="offline"), bus.topics.tasks_mcp)
        await broker.publish(b"not json", bus.topics.tasks_mcp, key=b"bad")
    assert len(results) == 3
    assert _handled("metered", bus.topics.tasks_mcp) == {"ok": 3, "dead_lettered": 3}
    # the test's publishes are the Bus's too (the service is the same): 5 tasks, 3 results, 3 dead letters;
    # the raw broker.publish of the unreadable record is not the Bus's
    assert _published("metered", bus.topics.tasks_mcp) == 5
    assert _published("metered", bus.topics.results) == 3
    assert _published("metered", bus.topics.deadletter) == 3


async def test_a_bus_subscription_observes_each_message_once_by_outcome(namespace: str) -> None:
    """The gateway's and control-plane's group-less subscriptions (Bus.subscribe) count the same way."""
    settings = FleetSettings(service_name="metered-edge", topic_namespace=namespace)
    bus = Bus(settings)
    seen: list[str] = []

    async def on_answer(answer: Answer) -> None:
        if answer.content == "boom":
            raise RuntimeError("boom")
        seen.append(answer.response_id)

    bus.subscribe(bus.topics.answers, Answer, on_answer, group=False)
    answer = Answer(response_id="r1", tenant_id="t", deadline_at=deadline_in(30), mode="moe", content="hello")
    async with TestKafkaBroker(bus.broker) as broker:
        await bus.publish(answer, bus.topics.answers)
        await bus.publish(answer.model_copy(update={"response_id": "r2", "content": "boom"}), bus.topics.answers)
        await broker.publish(b"{}", bus.topics.answers, key=b"r3")
    assert seen == ["r1"]
    assert _handled("metered-edge", bus.topics.answers) == {"ok": 1, "dead_lettered": 2}
    assert _published("metered-edge", bus.topics.answers) == 2


class Writer:
    """The cache write-behind's shape: reads answers, wants none that was a cache hit (Consumes.skip_marked)."""

    def __init__(self, res: Resources) -> None:
        self.seen: list[str] = []

    async def on_answer(self, answer: Answer) -> None:
        self.seen.append(answer.response_id)


WRITER = Stage(name="writer", settings=FleetSettings, build=Writer, summary="answers -> a cache",
               consumes=(Consumes("answers", Answer, "on_answer", skip_marked=(headers.CACHE_HIT,)),),
               publishes=(), needs=())


async def test_a_record_marked_as_its_subscription_skips_is_acknowledged_unhandled_and_counted(namespace: str) -> None:
    """FastStream's own handling (here its in-memory broker; in a service with MOE_CONSUMER_IN_FLIGHT=1): the decoder
    skips a cache hit's Answer by its header before parsing it; no handler, no dead letter, one `skipped`
    observation. (The runtime's direct handling skips it earlier: tests/infra/planner/test_semantic_cache.py.)"""
    settings = FleetSettings(service_name="writer", topic_namespace=namespace)
    bus = Bus(settings)
    app = create_stage_app(WRITER, settings, bus=bus, manage_broker=False)
    answer = Answer(response_id="composed", tenant_id="t", deadline_at=deadline_in(30), mode="moe", content="hi")
    async with TestKafkaBroker(bus.broker):
        await bus.publish(answer.model_copy(update={"response_id": "hit", "cache_hit": True}), bus.topics.answers)
        await bus.publish(answer, bus.topics.answers)
    assert app.state.writer.seen == ["composed"]
    assert _handled("writer", bus.topics.answers) == {"ok": 1, "skipped": 1}
    assert _published("writer", bus.topics.deadletter) == 0


def test_the_services_broker_exports_no_faststream_metrics() -> None:
    """Building a service's broker registers nothing of FastStream's in the fleet's registry: its Prometheus
    middleware (several observations per message; the dashboards read the runtime's own metrics) is not installed."""
    bus = Bus(FleetSettings(service_name="metered-broker", topic_namespace="unused"))
    assert bus.broker is not None
    assert not [f.name for f in REGISTRY.collect() if f.name.startswith("faststream")]
