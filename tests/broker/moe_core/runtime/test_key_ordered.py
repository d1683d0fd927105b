"""Many records of one partition in flight at once, in order per key (moe_core.runtime.key_ordered), on the real broker
through the stage runtime's router: records of different keys are handled concurrently; one key's records one
after the other in partition order; the committed offset never passes a record still being handled; a transient
failure is retried in place and the records after it are not handled again."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from moe_core.contracts import ChatRequest, ExpertTask, deadline_in
from moe_core.runtime.bus import Bus
from moe_core.runtime.offset_commits import OffsetCommits
from moe_core.runtime.settings import FleetSettings
from moe_core.stage.consumer import stage_router
from moe_core.stage.spec import Consumes, Stage
from tests.broker.moe_core.runtime.test_batched_commits import _committed, _consume, _is, _request, _until

pytestmark = pytest.mark.infra
ONE_PARTITION = 1


def _settings(bootstrap: str, namespace: str, in_flight: int = 16) -> FleetSettings:
    return FleetSettings(kafka_bootstrap=bootstrap, topic_namespace=namespace, topic_partitions=ONE_PARTITION,
                         service_name="key-ordered-test", consumer_in_flight=in_flight, retry_base_s=0.05,
                         retry_cap_s=0.1, kafka_commit_interval_ms=100)


async def _produce(bus: Bus, records: list[tuple[str, str]]) -> None:
    """(key, response_id) records, in this order, on the topic's one partition."""
    for key, rid in records:
        await bus.send_record(bus.topics.requests, key.encode(), _request(rid), {})


async def _started(settings: FleetSettings) -> Bus:
    bus = Bus(settings)
    await bus.ensure_topics()
    await bus.broker.connect()
    return bus


async def test_records_of_different_keys_are_handled_at_once(infra: dict[str, str], namespace: str) -> None:
    """Ten requests on one partition whose handlers each wait until all ten are in flight: with one record at a
    time per partition the first would wait for ever."""
    settings = _settings(infra["kafka"], namespace)
    producer = await _started(settings)
    together = 10
    active, most, everyone_in = 0, 0, asyncio.Event()

    async def handle(request: ChatRequest) -> None:
        nonlocal active, most
        active += 1
        most = max(most, active)
        if active == together:
            everyone_in.set()
        await asyncio.wait_for(everyone_in.wait(), 20)
        active -= 1

    await _produce(producer, [(f"k{i}", f"at-once-{i}") for i in range(together)])
    consumer = await _consume(settings, handle, OffsetCommits(settings.kafka_commit_interval_ms))
    try:
        await asyncio.wait_for(everyone_in.wait(), 30)
        await _until(lambda: _is(active == 0), "every handler finished")
    finally:
        await consumer.close()
        await producer.close()
    assert most == together


async def test_one_keys_records_are_handled_in_order_one_at_a_time(infra: dict[str, str], namespace: str) -> None:
    settings = _settings(infra["kafka"], namespace)
    producer = await _started(settings)
    order: dict[str, list[str]] = {"a": [], "b": []}
    active: Counter[str] = Counter()
    overlapped: list[str] = []

    async def handle(request: ChatRequest) -> None:
        key = request.response_id.split("-")[1]
        active[key] += 1
        if active[key] > 1:
            overlapped.append(request.response_id)
        await asyncio.sleep(0.2 if request.response_id.endswith("-0") else 0.01)  # the first is the slowest
        order[key].append(request.response_id)
        active[key] -= 1

    records = [(key, f"ord-{key}-{i}") for i in range(5) for key in ("a", "b")]
    await _produce(producer, records)
    consumer = await _consume(settings, handle, OffsetCommits(settings.kafka_commit_interval_ms))
    try:
        await _until(lambda: _is(sum(map(len, order.values())) == len(records)), "every record handled")
    finally:
        await consumer.close()
        await producer.close()
    assert order == {key: [f"ord-{key}-{i}" for i in range(5)] for key in ("a", "b")}
    assert overlapped == []


async def test_the_commit_never_passes_a_record_in_flight(infra: dict[str, str], namespace: str) -> None:
    """The partition's first record is held while the nine after it finish: nothing past it is committed until
    it is done, then everything is."""
    settings = _settings(infra["kafka"], namespace)
    producer = await _started(settings)
    topic, group = producer.topics.requests, settings.group_id()
    release, handled = asyncio.Event(), Counter[str]()

    async def handle(request: ChatRequest) -> None:
        if request.response_id == "held-0":
            await asyncio.wait_for(release.wait(), 30)
        handled[request.response_id] += 1

    await _produce(producer, [(f"h{i}", f"held-{i}") for i in range(10)])
    consumer = await _consume(settings, handle, OffsetCommits(settings.kafka_commit_interval_ms))
    try:
        await _until(lambda: _is(len(handled) == 9), "the nine records after the held one handled")
        await asyncio.sleep(0.5)  # several commit intervals: what would be committed is
        assert (await _committed(infra["kafka"], group, topic)).get(0, 0) == 0
        release.set()

        async def at_end() -> bool:
            return await _committed(infra["kafka"], group, topic) == {0: 10}

        await _until(at_end, "the partition committed to its end")
    finally:
        release.set()
        await consumer.close()
        await producer.close()
    assert set(handled.values()) == {1}


async def test_a_transient_failure_is_retried_in_place(infra: dict[str, str], namespace: str) -> None:
    """The first record fails twice with a transient error: it is handled on its third attempt, and the records
    after it, handled meanwhile, are not handled again (no seek back)."""
    settings = _settings(infra["kafka"], namespace)
    producer = await _started(settings)
    topic, group = producer.topics.requests, settings.group_id()
    attempts, handled = Counter[str](), Counter[str]()

    async def handle(request: ChatRequest) -> None:
        attempts[request.response_id] += 1
        if request.response_id == "flaky-0" and attempts["flaky-0"] < 3:
            raise RedisConnectionError("Redis went away")
        handled[request.response_id] += 1

    await _produce(producer, [(f"f{i}", f"flaky-{i}") for i in range(6)])
    consumer = await _consume(settings, handle, OffsetCommits(settings.kafka_commit_interval_ms))
    try:
        async def at_end() -> bool:
            return await _committed(infra["kafka"], group, topic) == {0: 6}

        await _until(at_end, "the partition committed to its end")
    finally:
        await consumer.close()
        await producer.close()
    assert attempts["flaky-0"] == 3
    assert handled == Counter({f"flaky-{i}": 1 for i in range(6)})


TASK_STAGE = Stage(name="per-task-test", settings=FleetSettings, build=lambda res: None, needs=(), publishes=(),
                   consumes=(Consumes("tasks_expert", ExpertTask, "on_task", per_task=True),), summary="a test stage")


def _task(rid: str, task_id: str, note: str = "") -> ExpertTask:
    return ExpertTask(response_id=rid, tenant_id="t", deadline_at=deadline_in(60), task_id=task_id,
                      category="general", instruction=note or task_id, question="q")


async def _consume_tasks(settings: FleetSettings, handle: Callable[[ExpertTask], Awaitable[None]]) -> Bus:
    bus = Bus(settings)
    router, _ = stage_router(TASK_STAGE, settings, bus, {"on_task": handle},
                             OffsetCommits(settings.kafka_commit_interval_ms))
    bus.broker.include_router(router)
    await bus.broker.start()
    return bus


async def test_a_requests_tasks_run_at_once_on_a_per_task_topic(infra: dict[str, str], namespace: str) -> None:
    """A plan's tasks share the request's key (and so its partition): on a per-task subscription each is handled
    without waiting for the others (each handler here waits until all three are in flight), while one task's own
    records still come one after the other, in order."""
    settings = _settings(infra["kafka"], namespace)
    producer = await _started(settings)
    together, active, most, everyone_in = 3, Counter[str](), 0, asyncio.Event()
    handled: list[str] = []

    async def handle(task: ExpertTask) -> None:
        nonlocal most
        active[task.task_id] += 1
        most = max(most, len(+active))
        if len(+active) == together:
            everyone_in.set()
        if task.instruction != "again":
            await asyncio.wait_for(everyone_in.wait(), 20)
        handled.append(f"{task.task_id}:{task.instruction}")
        active[task.task_id] -= 1

    for message in (_task("plan-1", "t1"), _task("plan-1", "t2"), _task("plan-1", "t1", "again"),
                    _task("plan-1", "t3")):
        await producer.publish(message, producer.topics.tasks_expert)  # the Bus stamps the task-id header
    consumer = await _consume_tasks(settings, handle)
    try:
        await _until(lambda: _is(len(handled) == 4), "every task handled")
    finally:
        await consumer.close()
        await producer.close()
    assert most == together  # t1, t2 and t3 at once; with the request's order t2 would wait for t1 for ever
    assert handled.index("t1:t1") < handled.index("t1:again")  # t1's second record after its first
