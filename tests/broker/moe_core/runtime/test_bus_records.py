"""What the Bus puts on the broker: it hands its records to the broker's Kafka producer itself (not FastStream's
publish path, which made a command, a correlation id and two middlewares per record): the record carries the
fleet's headers and the W3C context of its PRODUCER span, and none of FastStream's own headers."""

from __future__ import annotations

import re

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from moe_core.contracts import ChatMessage, ChatRequest, deadline_in, headers
from moe_core.runtime.bus import Bus, ensure_topics
from moe_core.runtime.kafka_clients import client_kwargs
from moe_core.runtime.settings import FleetSettings

pytestmark = pytest.mark.infra


async def test_a_published_record_carries_the_fleet_headers_and_its_trace(infra: dict[str, str],
                                                                          namespace: str) -> None:
    settings = FleetSettings(service_name="records", kafka_bootstrap=infra["kafka"], topic_namespace=namespace)
    bus = Bus(settings)
    await ensure_topics(settings.kafka_bootstrap, [bus.topics.requests], 1)
    await bus.broker.start()
    try:
        await bus.publish(ChatRequest(response_id="records-1", tenant_id="t", deadline_at=deadline_in(60),
                                      mode="moe-orchestrator", messages=[ChatMessage(role="user", content="hi")]),
                          bus.topics.requests)
    finally:
        await bus.close()
    consumer = AIOKafkaConsumer(**client_kwargs(bootstrap=infra["kafka"]), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(bus.topics.requests, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        records = (await consumer.getmany(tp, timeout_ms=10_000)).get(tp, [])
    finally:
        await consumer.stop()
    assert [r.key for r in records] == [b"records-1"]
    marks = {name: value.decode() for name, value in records[0].headers}
    assert marks[headers.RESPONSE_ID] == "records-1"
    assert marks[headers.MESSAGE_TYPE] == "ChatRequest"
    assert marks[headers.PRODUCER] == "records"
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}", marks["traceparent"])  # its PRODUCER span
    assert "correlation_id" not in marks and "content-type" not in marks  # FastStream's publish path not taken
