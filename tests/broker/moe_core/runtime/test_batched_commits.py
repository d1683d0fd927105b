"""Batched offset commits on the real broker (moe_core.runtime.offset_commits, through the stage runtime's router):
handled records are committed together, up to the end, while the consumer runs; a consumer killed after
handling but before its flush has its records redelivered to the next one (at-least-once, none lost); a
transient failure is still redelivered; a stop flushes what was handled."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from moe_core.contracts import ChatMessage, ChatRequest, deadline_in
from moe_core.runtime.bus import Bus
from moe_core.runtime.kafka_clients import client_kwargs
from moe_core.runtime.offset_commits import OffsetCommits
from moe_core.runtime.settings import FleetSettings
from moe_core.stage.spec import Consumes, Stage

pytestmark = pytest.mark.infra
PARTITIONS = 2
RECORDS = 20
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
STAGE = Stage(name="commit-test", settings=FleetSettings, build=lambda res: None, needs=(),
              consumes=(Consumes("requests", ChatRequest, "on_request"),), publishes=(), summary="a test stage")


def _settings(bootstrap: str, namespace: str, interval_ms: int) -> FleetSettings:
    return FleetSettings(kafka_bootstrap=bootstrap, topic_namespace=namespace, topic_partitions=PARTITIONS,
                         service_name="commit-test", consumer_workers=1, retry_base_s=0.05, retry_cap_s=0.1,
                         kafka_commit_interval_ms=interval_ms)


def _request(rid: str) -> bytes:
    return ChatRequest(response_id=rid, tenant_id="t", deadline_at=deadline_in(60), mode="moe-orchestrator",
                       messages=[ChatMessage(role="user", content=rid)]).model_dump_json().encode()


async def _produce(bootstrap: str, topic: str, prefix: str) -> list[str]:
    producer = AIOKafkaProducer(**client_kwargs(bootstrap=bootstrap))
    await producer.start()
    try:
        rids = [f"{prefix}-{i}" for i in range(RECORDS)]
        for i, rid in enumerate(rids):
            await producer.send_and_wait(topic, _request(rid), key=rid.encode(), partition=i % PARTITIONS)
        return rids
    finally:
        await producer.stop()


async def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(**client_kwargs(bootstrap=bootstrap))
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset >= 0}


async def _until(check: Callable[[], Awaitable[bool]], what: str, limit_s: float = 30.0) -> None:
    for _ in range(int(limit_s / 0.1)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {limit_s} s: {what}")


async def _consume(settings: FleetSettings, handle: Callable[[ChatRequest], Awaitable[None]],
                   commits: OffsetCommits) -> Bus:
    from moe_core.stage.consumer import stage_router

    bus = Bus(settings)
    router, _ = stage_router(STAGE, settings, bus, {"on_request": handle}, commits)
    bus.broker.include_router(router)
    await bus.broker.start()
    return bus


async def test_handled_records_are_committed_together_up_to_the_end(infra: dict[str, str], namespace: str) -> None:
    settings = _settings(infra["kafka"], namespace, 300)
    bus = Bus(settings)
    await bus.ensure_topics()
    topic, handled = bus.topics.requests, Counter[str]()
    commits = OffsetCommits(settings.kafka_commit_interval_ms)

    async def handle(request: ChatRequest) -> None:
        handled[request.response_id] += 1

    rids = await _produce(infra["kafka"], topic, "batch")
    consumer = await _consume(settings, handle, commits)
    try:
        await _until(lambda: _is(len(handled) == RECORDS), "every record handled")

        async def at_end() -> bool:  # committed while the consumer runs: by the timed flush
            return await _committed(infra["kafka"], settings.group_id(), topic) == {
                p: RECORDS // PARTITIONS for p in range(PARTITIONS)}

        await _until(at_end, "the committed offsets reach the end of each partition")
    finally:
        await consumer.close()
    assert sorted(handled) == sorted(rids) and set(handled.values()) == {1}
    assert 1 <= commits.commits < RECORDS  # together, not one broker commit per record


KILLED_CONSUMER = """
import asyncio, sys
from moe_core.runtime.offset_commits import OffsetCommits
from tests.broker.moe_core.runtime.test_batched_commits import _consume, _settings

async def main() -> None:
    settings = _settings(sys.argv[1], sys.argv[2], 60_000)  # the timed flush does not come in time

    async def handle(request) -> None:
        print("HANDLED", request.response_id, flush=True)

    await _consume(settings, handle, OffsetCommits(settings.kafka_commit_interval_ms))
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_a_consumer_killed_before_its_flush_has_its_records_redelivered(
        infra: dict[str, str], namespace: str) -> None:
    settings = _settings(infra["kafka"], namespace, 200)
    bus = Bus(settings)
    await bus.ensure_topics()
    topic = bus.topics.requests
    rids = await _produce(infra["kafka"], topic, "killed")
    child = subprocess.Popen([sys.executable, "-c", KILLED_CONSUMER, infra["kafka"], namespace], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert child.stdout is not None
        first: list[str] = []
        loop = asyncio.get_running_loop()
        while len(first) < RECORDS:
            line = await asyncio.wait_for(loop.run_in_executor(None, child.stdout.readline), timeout=60)
            assert line, "the first consumer ended early"
            if line.startswith("HANDLED "):  # (FastStream logs to stdout too)
                first.append(line.split()[1])
        assert sorted(first) == sorted(rids)
        assert await _committed(infra["kafka"], settings.group_id(), topic) == {}  # handled, not yet committed
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)

    again, commits = Counter[str](), OffsetCommits(settings.kafka_commit_interval_ms)

    async def handle(request: ChatRequest) -> None:
        again[request.response_id] += 1

    consumer = await _consume(settings, handle, commits)
    try:  # the group waits out the dead member's session (6 s) before assigning its partitions
        await _until(lambda: _is(len(again) == RECORDS), "every record redelivered", limit_s=60)
    finally:
        await consumer.close()  # and the stop flushes
    assert sorted(again) == sorted(rids)
    assert await _committed(infra["kafka"], settings.group_id(), topic) == {
        p: RECORDS // PARTITIONS for p in range(PARTITIONS)}


async def test_a_transient_failure_is_redelivered_and_then_committed(infra: dict[str, str], namespace: str) -> None:
    settings = _settings(infra["kafka"], namespace, 200)
    bus = Bus(settings)
    await bus.ensure_topics()
    topic, calls = bus.topics.requests, Counter[str]()
    flaky = "flaky-3"  # on partition 1, with records after it

    async def handle(request: ChatRequest) -> None:
        calls[request.response_id] += 1
        if request.response_id == flaky and calls[flaky] == 1:
            raise ConnectionError("the store went away")

    rids = await _produce(infra["kafka"], topic, "flaky")
    consumer = await _consume(settings, handle, OffsetCommits(settings.kafka_commit_interval_ms))
    try:
        await _until(lambda: _is(len(calls) == RECORDS and calls[flaky] == 2), "the failed record redelivered")

        async def at_end() -> bool:
            return await _committed(infra["kafka"], settings.group_id(), topic) == {
                p: RECORDS // PARTITIONS for p in range(PARTITIONS)}

        await _until(at_end, "the committed offsets reach the end of each partition")
    finally:
        await consumer.close()
    assert sorted(calls) == sorted(rids)
    assert calls[flaky] == 2 and all(n == 1 for rid, n in calls.items() if rid != flaky)


def test_the_interval_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert FleetSettings().kafka_commit_interval_ms == 1_000
    monkeypatch.setenv("MOE_KAFKA_COMMIT_INTERVAL_MS", "0")
    assert FleetSettings().kafka_commit_interval_ms == 0


async def _is(value: bool) -> bool:
    return value

