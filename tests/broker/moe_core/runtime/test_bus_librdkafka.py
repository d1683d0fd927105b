"""The Bus's librdkafka producer (MOE_KAFKA_PRODUCER=librdkafka, moe_core.runtime.rdkafka_producer) on the real broker
behaves as its aiokafka producer: the same records and headers, a write the principal's ACLs do not allow is a
BrokerRefused, a record larger than the broker takes fails with aiokafka's MessageSizeTooLargeError (dead-lettered at
once by the redelivery), and a broker that cannot be reached is a transient failure (redelivered)."""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import MessageSizeTooLargeError
from faststream.kafka.publisher.state import RealProducer

from moe_core.contracts import Answer, Topics, deadline_in, headers
from moe_core.runtime.bus import TRANSIENT_ERRORS, BrokerRefused, Bus, ensure_topics
from moe_core.runtime.kafka_clients import client_kwargs
from moe_core.runtime.rdkafka_producer import RdKafkaProducer
from moe_core.runtime.redelivery import TOO_LARGE_ERRORS, Redelivery
from moe_core.runtime.settings import FleetSettings
from moe_core.runtime.topic_reads import partitions_of
from tests.broker.deploy.test_broker_tls import critic  # noqa: F401 (the fixture: the critic over SASL_SSL)
from tests.broker.moe_core.provision.test_broker_acls import principals  # noqa: F401 (the fixture)
from tests.support.broker_principals import Principals, settings_of
from tests.support.ports import free_port

pytestmark = pytest.mark.infra
PRODUCERS = ["aiokafka", "librdkafka"]


def _answer(rid: str, content: str = "hello") -> Answer:
    return Answer(response_id=rid, tenant_id="t", deadline_at=deadline_in(60), mode="moe-orchestrator",
                  content=content)


async def _records(bootstrap: str, topic: str, partition: int = 0) -> list[Any]:
    consumer = AIOKafkaConsumer(**client_kwargs(bootstrap=bootstrap), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        return list((await consumer.getmany(tp, timeout_ms=10_000)).get(tp, []))
    finally:
        await consumer.stop()


async def _visible(bootstrap: str, topic: str, timeout_s: float = 120) -> None:
    """Until a new topic is in the broker's metadata: a loaded broker took up to ~30 s, a producer's own wait."""
    consumer = AIOKafkaConsumer(**client_kwargs(bootstrap=bootstrap), group_id=None)
    await consumer.start()
    try:
        end = asyncio.get_running_loop().time() + timeout_s
        while topic not in await consumer.topics():
            assert asyncio.get_running_loop().time() < end, f"{topic} not in the broker's metadata"
            await asyncio.sleep(0.5)
    finally:
        await consumer.stop()


@pytest.mark.parametrize("producer", PRODUCERS)
async def test_records_and_an_oversized_one_as_with_aiokafka(infra: dict[str, str], namespace: str,
                                                             producer: str) -> None:
    settings = FleetSettings(service_name="rdk", kafka_bootstrap=infra["kafka"],
                             topic_namespace=namespace).model_copy(update={"kafka_producer": producer})
    bus = Bus(settings)
    await ensure_topics(settings.kafka_bootstrap, [bus.topics.answers], 1)
    await _visible(settings.kafka_bootstrap, bus.topics.answers)
    await bus.broker.start()
    try:  # FastStream's own aiokafka producer is started only where the Bus publishes with it
        state = getattr(bus.broker.config.producer, "_producer", None)
        assert isinstance(state, RealProducer) == (producer == "aiokafka")
        await asyncio.gather(*(bus.publish(_answer(f"rdk-{n}"), bus.topics.answers) for n in range(3)))
        with pytest.raises(MessageSizeTooLargeError) as refused:  # more than the broker's 1 MiB
            await bus.publish(_answer("rdk-big", "x" * 2_000_000), bus.topics.answers)
        assert isinstance(refused.value, TOO_LARGE_ERRORS)
        await bus.publish(_answer("rdk-after"), bus.topics.answers)  # the producer goes on
    finally:
        await bus.close()
    records = await _records(infra["kafka"], bus.topics.answers)
    assert sorted(r.key for r in records) == [b"rdk-0", b"rdk-1", b"rdk-2", b"rdk-after"]
    marks = {name: value.decode() for name, value in records[0].headers}
    assert marks[headers.MESSAGE_TYPE] == "Answer" and marks[headers.PRODUCER] == "rdk"
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}", marks["traceparent"])  # its PRODUCER span


@pytest.mark.parametrize("producer", PRODUCERS)
async def test_a_write_the_acls_refuse_is_broker_refused(principals: Principals, namespace: str,  # noqa: F811
                                                         producer: str) -> None:
    env = {**os.environ, **principals.env("critic"), "MOE_TOPIC_NAMESPACE": namespace}
    bus = Bus(settings_of(env).model_copy(update={"service_name": "critic", "kafka_producer": producer}))
    topics = Topics.for_namespace(namespace)
    await bus.broker.start()
    try:
        await bus.publish(_answer("acl-1"), topics.answers)  # declared: the broker takes it
        with pytest.raises(BrokerRefused):
            await asyncio.wait_for(bus.publish(_answer("acl-2"), topics.requests), 40)  # the planner's input
    finally:
        await bus.close()


async def test_over_tls_within_and_beyond_its_acls(critic: FleetSettings, namespace: str) -> None:  # noqa: F811
    """The TLS listener (the broker's certificate checked against the local CA) with the critic's SCRAM identity."""
    bus = Bus(critic.model_copy(update={"kafka_producer": "librdkafka"}))
    await bus.broker.start()
    try:
        await bus.publish(_answer("tls-1"), bus.topics.answers)
        with pytest.raises(BrokerRefused):
            await asyncio.wait_for(bus.publish(_answer("tls-2"), bus.topics.requests), 40)
    finally:
        await bus.close()


async def test_an_unreachable_broker_is_a_transient_failure_redelivered() -> None:
    """Nothing listens at the bootstrap address: the record is not acknowledged within the timeout, and the error is
    one the Bus redelivers (TRANSIENT_ERRORS), not a refusal or a record too large."""
    settings = FleetSettings(service_name="rdk", kafka_bootstrap=f"127.0.0.1:{free_port()}")
    producer = RdKafkaProducer(settings, timeout_ms=2_000)
    try:
        with pytest.raises(TRANSIENT_ERRORS) as failed:
            await producer.send("moe.answers.v1", b"{}", b"k", [])
    finally:
        await producer.close(timeout_s=1)
    assert not isinstance(failed.value, TOO_LARGE_ERRORS)

    async def never(*_: object) -> None:
        raise AssertionError("a transient failure is not dead-lettered before its last attempt")

    redelivery = Redelivery(0.01, 0.01, 3)
    assert await redelivery.redeliver(object(), failed.value, never)  # redelivered


@pytest.mark.parametrize("producer", PRODUCERS)
async def test_a_key_goes_to_the_partition_the_readers_compute(infra: dict[str, str], namespace: str,
                                                               producer: str) -> None:
    """Every record of a request is keyed by its response_id, and its readers (the record's verify, the edge's
    stream replay, the settle sweeper: moe_core.runtime.topic_reads) read only the partition the Java client's
    murmur2 partitioner names. librdkafka's own default (consistent_random, CRC32) put most keys elsewhere: a verify
    after the chaos broker restart found their stored records "not in Kafka"."""
    settings = FleetSettings(service_name="rdk", kafka_bootstrap=infra["kafka"], topic_namespace=namespace,
                             ).model_copy(update={"kafka_producer": producer})
    bus = Bus(settings)
    await ensure_topics(settings.kafka_bootstrap, [bus.topics.answers], 6)
    await _visible(settings.kafka_bootstrap, bus.topics.answers)
    keys = [f"part-{n}" for n in range(12)]
    await bus.broker.start()
    try:
        await asyncio.gather(*(bus.publish(_answer(key), bus.topics.answers) for key in keys))
    finally:
        await bus.close()
    expected = (await partitions_of(settings, [bus.topics.answers], keys))[bus.topics.answers]
    found = {r.key.decode(): r.partition for n in range(6)
             for r in await _records(infra["kafka"], bus.topics.answers, n)}
    assert found == expected


async def test_after_a_fatal_error_the_next_record_goes_to_a_new_producer(infra: dict[str, str],
                                                                          namespace: str) -> None:
    """A fatal error of librdkafka itself, provoked on the real broker: with its gap-less guarantee on (a setting the
    fleet does not use), a record the broker refuses (larger than the topic's max.message.bytes, smaller than the
    client's limit) leaves a gap in the idempotent producer's sequence, which librdkafka makes fatal; a fatal
    producer refuses every later record ("Local: Fatal error"). That record fails as too large (dead-lettered at
    once), and the next one is acknowledged: it went to a new producer."""
    settings = FleetSettings(service_name="rdk", kafka_bootstrap=infra["kafka"], topic_namespace=namespace)
    topic = f"{namespace}.small.v1"
    await ensure_topics(settings.kafka_bootstrap, [topic], 1, {topic: {"max.message.bytes": "4096"}})
    await _visible(settings.kafka_bootstrap, topic)
    producer = RdKafkaProducer(settings, overrides={"enable.gapless.guarantee": True})
    try:
        await producer.send(topic, b"{}", b"before", [])
        with pytest.raises(MessageSizeTooLargeError):
            await asyncio.wait_for(producer.send(topic, b"x" * 20_000, b"big", []), 60)
        await asyncio.wait_for(producer.send(topic, b"{}", b"after", []), 60)
    finally:
        await producer.close(timeout_s=1)
    assert [r.key for r in await _records(infra["kafka"], topic)] == [b"before", b"after"]
