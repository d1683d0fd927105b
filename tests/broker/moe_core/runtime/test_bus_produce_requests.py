"""Bus.publish_all on the real broker: the messages it is given go out in one Produce request (one socket send,
one acknowledgement for all), which the stages rely on when they join the messages of one step (the planner's
audit records, plan and tasks; the merger's answer and ingest event); awaited one after another, each is its own
Produce request (the producer has one request in flight per broker, and nothing waits in its buffer when the next
publish starts). Counted, never timed."""

from __future__ import annotations

import pytest

from moe_core.contracts import AuditEvent, ChatMessage, ChatRequest, Envelope, deadline_in
from moe_core.runtime.bus import Bus, ensure_topics
from moe_core.runtime.settings import FleetSettings
from tests.support.produce_requests import produce_requests

pytestmark = pytest.mark.infra


def _messages(bus: Bus, rid: str) -> list[tuple[Envelope, str]]:
    request = ChatRequest(response_id=rid, tenant_id="t", deadline_at=deadline_in(60), mode="moe-orchestrator",
                          messages=[ChatMessage(role="user", content="hi")])
    record = AuditEvent(response_id=rid, tenant_id="t", deadline_at=deadline_in(60), action="egress.decided",
                        actor="service:planner", subject=f"request:{rid}")
    return [(record, bus.topics.audit), (request, bus.topics.requests), (request, bus.topics.housekeeping)]


async def test_publish_all_is_one_produce_request_and_one_by_one_is_one_each(infra: dict[str, str],
                                                                           namespace: str) -> None:
    settings = FleetSettings(service_name="produce", kafka_bootstrap=infra["kafka"], topic_namespace=namespace,
                             kafka_producer="aiokafka")  # its Produce requests are counted in aiokafka's client
    bus = Bus(settings)
    await ensure_topics(settings.kafka_bootstrap, [bus.topics.audit, bus.topics.requests, bus.topics.housekeeping], 2)
    await bus.broker.start()
    try:
        # counted once the partitions of these keys accept: a topic just created can answer NotLeaderForPartition
        # first, and the producer's retry is a Produce request more
        for rid in ("produce-together", "produce-apart"):
            await bus.publish_all(_messages(bus, rid))
        together = produce_requests(bus, b"produce-together")
        await bus.publish_all(_messages(bus, "produce-together"))
        apart = produce_requests(bus, b"produce-apart")
        for message, topic in _messages(bus, "produce-apart"):
            await bus.publish(message, topic)
    finally:
        await bus.close()
    assert together == [{bus.topics.audit, bus.topics.requests, bus.topics.housekeeping}]
    assert apart == [{bus.topics.audit}, {bus.topics.requests}, {bus.topics.housekeeping}]
