"""Topic retention for the audit trail comes from settings: applied when the topics are created, updated when
the setting changes (Bus.ensure_topics), on the real broker."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from moe_core.runtime.bus import Bus
from moe_core.runtime.kafka_clients import client_kwargs
from moe_core.runtime.settings import FleetSettings

pytestmark = pytest.mark.infra
DAY_MS = 86_400_000


async def _retention(bootstrap: str, topics: list[str]) -> dict[str, str]:
    admin = AIOKafkaAdminClient(**client_kwargs(bootstrap=bootstrap))
    await admin.start()
    try:
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in topics])
    finally:
        await admin.close()
    # a topic just created may be described without its configs yet (under load): "" until they are there
    return {res[3]: dict((e[0], e[1]) for e in res[4]).get("retention.ms", "") for r in responses
            for res in r.resources}


async def _eventually(bootstrap: str, topics: list[str], expected: dict[str, str]) -> dict[str, str]:
    seen: dict[str, str] = {}
    for _ in range(100):  # the broker applies config changes asynchronously (KRaft metadata)
        seen = await _retention(bootstrap, topics)
        if seen == expected:
            break
        await asyncio.sleep(0.1)
    return seen


async def test_retention_is_applied_at_creation_and_updated(infra: dict[str, str], namespace: str) -> None:
    settings = FleetSettings(kafka_bootstrap=infra["kafka"], topic_namespace=namespace)
    bus = Bus(settings)
    await bus.ensure_topics()
    topics = [bus.topics.answers, bus.topics.audit, bus.topics.deltas]
    assert await _eventually(infra["kafka"], topics, {
        bus.topics.answers: str(30 * DAY_MS), bus.topics.audit: str(365 * DAY_MS),
        bus.topics.deltas: str(7 * DAY_MS)}) == {
        bus.topics.answers: str(30 * DAY_MS), bus.topics.audit: str(365 * DAY_MS),
        bus.topics.deltas: str(7 * DAY_MS)}
    changed = FleetSettings(kafka_bootstrap=infra["kafka"], topic_namespace=namespace,
                            topic_retention_days='{"answers": 90, "audit": -1}')
    await Bus(changed).ensure_topics()
    expected = {bus.topics.answers: str(90 * DAY_MS), bus.topics.audit: "-1", bus.topics.deltas: str(7 * DAY_MS)}
    assert await _eventually(infra["kafka"], topics, expected) == expected
