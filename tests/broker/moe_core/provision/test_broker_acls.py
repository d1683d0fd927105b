"""The authenticated broker (issue 25): an anonymous client or a wrong password is refused; a service's principal
may write and read exactly what its declaration names (ACLs from moe_core.provision.broker_acls), and a refused write
is a BrokerRefused the service logs and counts (moe_kafka_refused_total)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)
from pydantic import SecretStr

from moe_core.contracts import Answer, Topics, deadline_in
from moe_core.runtime.bus import BrokerRefused, Bus, ensure_fleet_topics
from moe_core.runtime.kafka_clients import client_kwargs
from moe_core.runtime.observability.metrics import REGISTRY
from moe_core.runtime.settings import FleetSettings
from tests.support.broker_principals import Principals, settings_of

pytestmark = pytest.mark.infra
SERVICES = ["critic", "planner"]


@pytest.fixture
def principals(infra: dict[str, str], namespace: str) -> Iterator[Principals]:
    """The namespace's topics, and the critic's and planner's principals with their generated ACLs."""
    made = Principals({**os.environ, "MOE_TOPIC_NAMESPACE": namespace}, SERVICES)
    if not made.enabled:
        pytest.fail("the local broker runs without SASL: restart it (`fleetctl restart kafka`)")
    made.set_up()
    yield made
    made.tear_down()


def _as(principals: Principals, service: str, namespace: str) -> FleetSettings:
    """The service's settings with its own principal (the rest as the admin's: bootstrap, protocol)."""
    env = {**principals.env(service), "MOE_TOPIC_NAMESPACE": namespace}
    return settings_of(env).model_copy(update={"service_name": service})


async def _send(settings: FleetSettings, topic: str) -> None:
    producer = AIOKafkaProducer(**client_kwargs(settings), request_timeout_ms=10_000)
    try:
        await producer.start()
        await producer.send_and_wait(topic, b"{}", key=b"k")
    finally:
        await producer.stop()


async def _read(settings: FleetSettings, topic: str, group: str | None) -> None:
    """Fetch from `topic` (in `group`) until the broker answers: records, nothing, or a refusal."""
    consumer = AIOKafkaConsumer(topic, **client_kwargs(settings), group_id=group, auto_offset_reset="earliest",
                                enable_auto_commit=False, session_timeout_ms=6_000, heartbeat_interval_ms=1_000)
    try:
        await consumer.start()
        await consumer.getmany(timeout_ms=3_000)
        await consumer.getmany(timeout_ms=1_000)
        if group is not None:
            await consumer.commit()
    finally:
        await consumer.stop()


async def test_an_anonymous_client_and_a_wrong_password_are_refused(infra: dict[str, str], namespace: str) -> None:
    """The same write to a topic that exists: the admin's password is taken, a wrong one (or none) refused at
    sign-in. So the refusal is the password's, not a missing topic's (a write to a topic never made fails with
    any password: UnknownTopicOrPartitionError)."""
    anonymous = AIOKafkaProducer(bootstrap_servers=infra["kafka"], request_timeout_ms=5_000)
    with pytest.raises(KafkaConnectionError):
        await anonymous.start()
    await anonymous.stop()
    admin = settings_of({**os.environ, "MOE_TOPIC_NAMESPACE": namespace})
    if not admin.kafka_security_protocol.startswith("SASL_"):
        pytest.fail("the local broker runs without SASL: restart it (`fleetctl restart kafka`)")
    await ensure_fleet_topics(admin)
    topic = Topics.for_namespace(namespace).requests
    await _send(admin, topic)  # the right password: the broker takes the write
    wrong = admin.model_copy(update={"kafka_password": SecretStr("not-the-password")})
    with pytest.raises(KafkaConnectionError):  # the broker closes the connection at authentication
        await _send(wrong, topic)


async def test_a_principal_writes_and_reads_only_what_its_declaration_names(
        principals: Principals, namespace: str) -> None:
    topics = Topics.for_namespace(namespace)
    critic = _as(principals, "critic", namespace)  # consumes drafts; publishes answers, ingest, progress
    await _send(critic, topics.answers)
    await _send(critic, topics.deadletter)
    await _read(critic, topics.drafts, critic.group_id())
    with pytest.raises(TopicAuthorizationFailedError):
        await _send(critic, topics.requests)  # the planner's input: not the critic's to write
    with pytest.raises(TopicAuthorizationFailedError):
        await _read(critic, topics.requests, None)
    with pytest.raises(GroupAuthorizationFailedError):
        await _read(critic, topics.drafts, _as(principals, "planner", namespace).group_id())  # another's group
    planner = _as(principals, "planner", namespace)
    await _send(planner, topics.tasks_expert)
    with pytest.raises(TopicAuthorizationFailedError):
        await _send(planner, topics.drafts)


def _refused(service: str, topic: str) -> float:
    value = REGISTRY.get_sample_value("moe_kafka_refused_total",
                                      {"service": service, "topic": topic, "operation": "write"})
    return value or 0.0


async def test_a_refused_write_is_logged_and_counted_by_the_service(
        principals: Principals, namespace: str, caplog: pytest.LogCaptureFixture) -> None:
    critic = _as(principals, "critic", namespace)
    bus = Bus(critic)
    topics = bus.topics
    answer = Answer(response_id="acl-1", tenant_id="t", deadline_at=deadline_in(60), mode="moe-orchestrator",
                    content="forged")
    before = _refused("critic", topics.requests)
    await bus.broker.start()
    try:
        await bus.publish(answer, topics.answers)  # declared: the broker takes it
        with caplog.at_level(logging.ERROR, logger="moe_core.runtime.bus"), pytest.raises(BrokerRefused):
            await asyncio.wait_for(bus.publish(answer, topics.requests), 30)
    finally:
        await bus.close()
    assert _refused("critic", topics.requests) == before + 1
    assert any(f"User:{critic.kafka_username}" in r.getMessage() and topics.requests in r.getMessage()
               for r in caplog.records)
