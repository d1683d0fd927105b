"""A service's shutdown (moe_core.service): the subscribers stop before the shutdown hooks close the stores, so
a message in flight ends (finished, or cancelled and left uncommitted for redelivery) while its stores are still
open. The other order had graph-ingest dead-letter an in-flight message with 'DriverError: Driver closed'."""

from __future__ import annotations

import asyncio

import pytest

from moe_core.bus import Bus, ensure_topics, wait_positioned
from moe_core.contracts import ChatMessage, ChatRequest, deadline_in
from moe_core.service import create_service_app
from moe_core.settings import FleetSettings

pytestmark = pytest.mark.infra


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
