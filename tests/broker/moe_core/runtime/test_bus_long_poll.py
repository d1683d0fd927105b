"""The bus's consumers long-poll: the broker answers a parked fetch as soon as a record arrives, so a
long `MOE_KAFKA_FETCH_MAX_WAIT_MS` (fewer idle fetches) does not delay delivery."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.partitioner import DefaultPartitioner

from moe_core.contracts import ChatMessage, ChatRequest, deadline_in
from moe_core.runtime.bus import Bus, ensure_topics, wait_positioned
from moe_core.runtime.settings import FleetSettings

pytestmark = pytest.mark.infra
FETCH_WAIT_MS = 30_000  # far longer than the test waits: a fetch that is not answered early fails it


def in_partition(key: str, partition: int) -> bool:
    """Whether the key goes to `partition` of two, as the producers put it (murmur2)."""
    return bool(DefaultPartitioner()(key.encode(), [0, 1], [0, 1]) == partition)


def test_default_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert FleetSettings().kafka_fetch_max_wait_ms == 2_000
    monkeypatch.setenv("MOE_KAFKA_FETCH_MAX_WAIT_MS", "25")
    assert FleetSettings().kafka_fetch_max_wait_ms == 25


@pytest.mark.parametrize("group", [True, False])
async def test_a_record_ends_the_long_poll(infra: dict[str, str], namespace: str, group: bool) -> None:
    settings = FleetSettings(service_name="longpoll", kafka_bootstrap=infra["kafka"], topic_namespace=namespace,
                             kafka_fetch_max_wait_ms=FETCH_WAIT_MS, consumer_workers=1)
    bus = Bus(settings)
    await ensure_topics(settings.kafka_bootstrap, [bus.topics.requests], 2)
    got: asyncio.Queue[str] = asyncio.Queue()

    async def handler(request: ChatRequest) -> None:
        await got.put(request.response_id)

    def request(rid: str) -> ChatRequest:
        return ChatRequest(response_id=rid, tenant_id="t", deadline_at=deadline_in(60), mode="moe-orchestrator",
                           messages=[ChatMessage(role="user", content="hi")])

    subscriber = bus.subscribe(bus.topics.requests, ChatRequest, handler, group=group, offset_reset="latest")
    await bus.broker.start()
    try:
        await wait_positioned(subscriber)
        # one record read from each partition first: librdkafka puts a partition in its fetches once that partition
        # is ready (its leader's epoch checked), and a fetch parked before that leaves it out until it returns (up to
        # the fetch wait: 30 s here, MOE_KAFKA_FETCH_MAX_WAIT_MS, 2 s, in the fleet); the CI's loaded machine took
        # longer than the second given to park (a record's wait for that is a start's, not the long poll's)
        for partition in range(2):
            rid = next(r for r in (f"warm-{n}" for n in range(64)) if in_partition(r, partition))
            await bus.publish(request(rid), bus.topics.requests)
            assert await asyncio.wait_for(got.get(), timeout=FETCH_WAIT_MS / 1000 * 2) == rid
        await asyncio.sleep(1.0)  # let the consumer park its next fetch on the broker, every partition in it
        for i in range(3):
            rid = f"longpoll-{i}"
            await bus.publish(request(rid), bus.topics.requests)
            assert await asyncio.wait_for(got.get(), timeout=FETCH_WAIT_MS / 1000 / 3) == rid
    finally:
        await bus.close()


async def test_a_reply_subscription_drops_unwanted_records_before_faststream(infra: dict[str, str],
                                                                            namespace: str) -> None:
    """`wanted` (a gateway replica's own requests): the other records never reach FastStream's handling (its
    parser, middlewares and trace span: `subscriber.consume`), the wanted ones do."""
    settings = FleetSettings(service_name="wanted", kafka_bootstrap=infra["kafka"], topic_namespace=namespace)
    bus = Bus(settings)
    await ensure_topics(settings.kafka_bootstrap, [bus.topics.requests], 2)
    got: list[str] = []

    async def handler(request: ChatRequest) -> None:
        got.append(request.response_id)

    subscriber = bus.subscribe(bus.topics.requests, ChatRequest, handler, group=False, offset_reset="latest",
                               wanted=lambda rid: rid.startswith("mine-"))
    handled, consume = [], subscriber.consume

    async def counted(msg: object) -> object:
        handled.append(msg)
        return await consume(msg)

    subscriber.consume = counted
    await bus.broker.start()
    try:
        await wait_positioned(subscriber)
        rids = ["mine-1", "other-1", "other-2", "mine-2", "other-3", "mine-3"]
        await bus.publish_all([(ChatRequest(response_id=rid, tenant_id="t", deadline_at=deadline_in(60),
                                            mode="moe-orchestrator", messages=[ChatMessage(role="user", content="hi")]),
                                bus.topics.requests) for rid in rids])
        for _ in range(100):
            if len(got) == 3:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # the other records have arrived too by now (same batch of publishes)
    finally:
        await bus.close()
    assert sorted(got) == ["mine-1", "mine-2", "mine-3"]
    assert len(handled) == 3  # FastStream handled only the wanted records
