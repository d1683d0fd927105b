"""A service's shutdown (moe_core.runtime.service): the subscribers stop before the shutdown hooks close the stores, so
a message in flight ends (finished, or cancelled and left uncommitted for redelivery) while its stores are still
open. The other order had graph-ingest dead-letter an in-flight message with 'DriverError: Driver closed'. And no
consumer leaves its group while a message of any of the service's subscriptions is in flight."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition

from moe_core.contracts import ChatMessage, ChatRequest, Feedback, deadline_in
from moe_core.runtime.bus import Bus, ensure_topics, wait_positioned
from moe_core.runtime.kafka_clients import CONSUMER_TIMING
from moe_core.runtime.offset_commits import OffsetCommits
from moe_core.runtime.service import create_service_app
from moe_core.runtime.settings import FleetSettings
from moe_core.stage.consumer import stage_router
from moe_core.stage.spec import Consumes, Stage
from tests.broker.moe_core.runtime.test_batched_commits import STAGE, _committed, _consume, _request, _until

pytestmark = pytest.mark.infra
TWO_TOPICS = Stage(name="two-topics", settings=FleetSettings, build=lambda res: None, needs=(), publishes=(),
                   consumes=(Consumes("requests", ChatRequest, "on_request"),
                             Consumes("feedback", Feedback, "on_feedback")),
                   summary="graph-ingest's shape: two subscriptions in one consumer group")


async def test_the_hooks_close_the_stores_after_the_message_in_flight_ended(infra: dict[str, str],
                                                                          namespace: str) -> None:
    settings = FleetSettings(service_name="shutdown", kafka_bootstrap=infra["kafka"], topic_namespace=namespace,
                             consumer_workers=1)
    bus = Bus(settings)
    await ensure_topics(settings.kafka_bootstrap, [bus.topics.requests], 1)
    handling = asyncio.Event()
    order: list[str] = []

    async def handler(request: ChatRequest) -> None:
        handling.set()
        try:
            await asyncio.sleep(3)  # the message is in flight when the service is told to stop
        finally:
            order.append("message ended")

    async def close_store() -> None:
        order.append("store closed")

    subscriber = bus.subscribe(bus.topics.requests, ChatRequest, handler, offset_reset="latest")
    app = create_service_app(settings, bus, on_shutdown=[close_store])
    async with app.router.lifespan_context(app):
        await wait_positioned(subscriber)
        await bus.publish(ChatRequest(response_id="shutdown-1", tenant_id="t", deadline_at=deadline_in(60),
                                      mode="moe-orchestrator", messages=[ChatMessage(role="user", content="hi")]),
                          bus.topics.requests)
        await asyncio.wait_for(handling.wait(), timeout=60)
    assert order == ["message ended", "store closed"]


@pytest.mark.parametrize("in_flight", [4, 1])
async def test_a_message_still_handled_after_the_grace_is_cancelled_and_the_next_owner_handles_it(
        infra: dict[str, str], namespace: str, in_flight: int) -> None:
    """A handler that would run for an hour (a model call of the embedded model on busy cores) must not hold the
    shutdown past the supervisor's kill (graph-ingest was killed 15 s after SIGTERM on every `make down`): after
    MOE_SHUTDOWN_GRACE_S it is cancelled before the stores close, and its message, never committed, is handled by
    the group's next consumer. In flight 1: FastStream handles it in its consume loop, whose stop would wait a
    second grace (longer than the consumer's bounded stop: 2 s here) if the loop were not cancelled first."""
    settings = FleetSettings(service_name="shutdown-grace", kafka_bootstrap=infra["kafka"], topic_namespace=namespace,
                             topic_partitions=1, consumer_workers=1, consumer_in_flight=in_flight, shutdown_grace_s=2.0,
                             kafka_commit_interval_ms=100)
    stuck, order = asyncio.Event(), []

    async def forever(request: ChatRequest) -> None:
        stuck.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            order.append(f"cancelled {request.response_id}")
            raise

    async def close_store() -> None:
        order.append("store closed")

    bus = Bus(settings)
    await bus.ensure_topics()
    router, _ = stage_router(STAGE, settings, bus, {"on_request": forever}, OffsetCommits(100))
    bus.broker.include_router(router)
    app = create_service_app(settings, bus, on_shutdown=[close_store])
    async with app.router.lifespan_context(app):
        await bus.send_record(bus.topics.requests, b"stuck-1", _request("stuck-1"), {})
        await asyncio.wait_for(stuck.wait(), timeout=60)
    assert order == ["cancelled stuck-1", "store closed"]

    again: asyncio.Queue[str] = asyncio.Queue()

    async def handled(request: ChatRequest) -> None:
        await again.put(request.response_id)

    next_owner = await _consume(settings, handled, OffsetCommits(100))
    try:
        assert await asyncio.wait_for(again.get(), timeout=60) == "stuck-1"
    finally:
        await next_owner.close()


async def test_a_message_finished_within_the_grace_is_committed_though_another_subscription_stops_with_it(
        infra: dict[str, str], namespace: str) -> None:
    """graph-ingest reads two topics in one group. Its stop stopped both subscriptions at once: the idle one left the
    group at once, the rebalance revoked the busy one's partitions, so the message that then finished within the grace
    was not committed (handled again by the next owner), and the same record, fetched again after the reassignment,
    waited behind itself and was counted as a second message cancelled. Every subscription's messages now end before
    any consumer leaves."""
    settings = FleetSettings(service_name="shutdown-two", kafka_bootstrap=infra["kafka"], topic_namespace=namespace,
                             topic_partitions=1, consumer_in_flight=4, shutdown_grace_s=30,
                             kafka_commit_interval_ms=100)
    handling = asyncio.Event()
    finished: list[str] = []
    revoked: list[TopicPartition] = []

    class Watched(OffsetCommits):
        def revoked(self, tps: set[TopicPartition]) -> None:
            revoked.extend(tps)
            super().revoked(tps)

    async def held(request: ChatRequest) -> None:
        handling.set()
        while subscribers["on_request"].running:  # until the service is told to stop
            await asyncio.sleep(0.05)
        # a consumer that left the group has the others' partitions revoked at their next heartbeat
        await asyncio.sleep(3 * CONSUMER_TIMING["heartbeat_interval_ms"] / 1000)
        finished.append(request.response_id)

    async def idle(feedback: Feedback) -> None:
        return None

    bus = Bus(settings)
    await bus.ensure_topics()
    router, subscribers = stage_router(TWO_TOPICS, settings, bus, {"on_request": held, "on_feedback": idle},
                                       Watched(100))
    bus.broker.include_router(router)
    app = create_service_app(settings, bus)
    async with app.router.lifespan_context(app):
        async def joined() -> bool:  # both in the group, its last rebalance done: none revokes the message
            return all(s.consumer is not None and s.consumer.assignment() for s in subscribers.values())

        await _until(joined, "both subscriptions assigned")
        revoked.clear()
        await bus.send_record(bus.topics.requests, b"held-1", _request("held-1"), {})
        await asyncio.wait_for(handling.wait(), timeout=60)
    assert finished == ["held-1"]  # not cancelled
    assert revoked == []
    assert await _committed(infra["kafka"], settings.group_id(), bus.topics.requests) == {0: 1}  # not redelivered
