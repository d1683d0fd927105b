"""A service's group subscriptions share one consumer (moe_core.stage.consumer, issue 52) on the real broker: the
group has one member for both topics, each topic's records reach its own handler as its own model, a bad payload
on one topic is dead-lettered while the other's records go on, and both topics' offsets are committed to the end."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from moe_core.contracts import ChatRequest, DeadLetter, Feedback, deadline_in
from moe_core.runtime.bus import Bus
from moe_core.runtime.kafka_clients import client_kwargs
from moe_core.runtime.offset_commits import OffsetCommits
from moe_core.runtime.service import create_service_app
from moe_core.runtime.settings import FleetSettings
from moe_core.stage.consumer import stage_router
from tests.broker.moe_core.runtime.test_batched_commits import _committed, _request, _until
from tests.broker.moe_core.runtime.test_service_shutdown import TWO_TOPICS

pytestmark = pytest.mark.infra


async def _members(bootstrap: str, group: str) -> int:
    admin = AIOKafkaAdminClient(**client_kwargs(bootstrap=bootstrap))
    await admin.start()
    try:
        (described,) = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    return len(described.groups[0][5])  # (error, group, state, protocol type, protocol, members, ...)


async def test_a_services_topics_are_read_by_one_member_each_by_its_own_handler(infra: dict[str, str],
                                                                                namespace: str) -> None:
    settings = FleetSettings(service_name="one-consumer", kafka_bootstrap=infra["kafka"], topic_namespace=namespace,
                             topic_partitions=1, kafka_commit_interval_ms=100)
    requests: list[str] = []
    feedback: list[tuple[str, int]] = []
    letters: list[DeadLetter] = []

    async def on_request(request: ChatRequest) -> None:
        requests.append(request.response_id)

    async def on_feedback(rating: Feedback) -> None:
        feedback.append((rating.response_id, rating.rating))

    bus = Bus(settings)
    await bus.ensure_topics()
    router, subscribers = stage_router(TWO_TOPICS, settings, bus, {"on_request": on_request,
                                                                   "on_feedback": on_feedback}, OffsetCommits(100))
    assert subscribers["on_request"] is subscribers["on_feedback"]
    bus.broker.include_router(router)

    @bus.broker.subscriber(bus.topics.deadletter, auto_offset_reset="earliest")
    async def dead(letter: DeadLetter) -> None:
        letters.append(letter)

    app = create_service_app(settings, bus)
    async with app.router.lifespan_context(app):
        await _until(lambda: _assigned(subscribers["on_request"]), "the consumer assigned")
        assert await _members(infra["kafka"], settings.group_id()) == 1
        await bus.send_record(bus.topics.feedback, b"f-1", _feedback("f-1", 2), {})
        await bus.send_record(bus.topics.feedback, b"bad-1", b'{"not": "feedback"}', {})
        await bus.send_record(bus.topics.requests, b"r-1", _request("r-1"), {})
        await bus.send_record(bus.topics.feedback, b"f-2", _feedback("f-2", 5), {})

        async def done() -> bool:
            return (len(letters) == 1 and len(feedback) == 2 and requests == ["r-1"]
                    and await _committed(infra["kafka"], settings.group_id(), bus.topics.feedback) == {0: 3}
                    and await _committed(infra["kafka"], settings.group_id(), bus.topics.requests) == {0: 1})

        await _until(done, "both topics handled and committed")
    assert feedback == [("f-1", 2), ("f-2", 5)]  # in order, each as its topic's model
    assert (letters[0].source_topic, letters[0].error_type) == (bus.topics.feedback, "validation_error")


def _feedback(rid: str, rating: int) -> bytes:
    rated = Feedback(response_id=rid, tenant_id="t", deadline_at=deadline_in(60), rating=rating)
    return rated.model_dump_json().encode()


async def _assigned(subscriber: object) -> bool:
    consumer = getattr(subscriber, "consumer", None)
    await asyncio.sleep(0)
    return consumer is not None and bool(consumer.assignment())
