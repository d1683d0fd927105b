"""Reading records back from the fleet's topics by key, with no consumer group and nothing committed: every
record of a request is keyed by its response_id, so the producers' default partitioner (murmur2) names the one
partition of each topic that holds them, and a partition is read from a broker time (offsets_for_times) up to
its end offset at the time of the call. The edge reads a resumed stream's events back with it
(gateway.stream_replay); the control plane's settle sweeper the Answers of requests whose edge replica died
(control_plane.usage.settle_sweep)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner
from pydantic import ValidationError

from moe_core.contracts import Answer, Topics
from moe_core.runtime.kafka_clients import client_kwargs
from moe_core.runtime.settings import FleetSettings

log = logging.getLogger(__name__)


def keyed_consumer(settings: FleetSettings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(**client_kwargs(settings), group_id=None, enable_auto_commit=False,
                            auto_offset_reset="earliest", fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms)


async def partitions_of(settings: FleetSettings, topics: list[str], keys: list[str]) -> dict[str, dict[str, int]]:
    """topic -> key -> the partition the producers' default partitioner puts that key's records in."""
    admin = AIOKafkaAdminClient(**client_kwargs(settings))
    await admin.start()
    try:
        described = {t["topic"]: t for t in await admin.describe_topics(topics)}
    finally:
        await admin.close()
    out: dict[str, dict[str, int]] = {}
    for topic in topics:
        numbers = sorted(p["partition"] for p in described.get(topic, {}).get("partitions", []))
        if not numbers:
            raise RuntimeError(f"topic {topic} has no partitions")
        out[topic] = {key: int(DefaultPartitioner()(key.encode(), numbers, numbers)) for key in keys}
    return out


async def seek_since(consumer: AIOKafkaConsumer, since: dict[TopicPartition, float]) -> dict[TopicPartition, int]:
    """Seek each (assigned) partition to its first record at or after `since` (epoch s); their end offsets."""
    found = await consumer.offsets_for_times({tp: int(at * 1000) for tp, at in since.items()})
    ends: dict[TopicPartition, int] = await consumer.end_offsets(list(since))
    for tp in since:
        offset = found.get(tp)
        consumer.seek(tp, offset.offset if offset is not None else ends[tp])
    return ends


async def behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    """Some partition has not been read up to its end offset yet."""
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False


async def published_answers(settings: FleetSettings, requests: dict[str, float], *, lookback_s: float,
                            timeout_s: float,
                            proven: Callable[[Any, str], Awaitable[bool]] | None = None) -> dict[str, Answer]:
    """The Answers on the answers topic now for these requests (response_id -> creation, epoch s); one
    consumer, each partition read from its earliest request's creation up to its current end. proven: whether a
    declared producer signed a record (Bus.proven_record: a refused one is counted and dead-lettered, and the next
    Answer of its request is looked for)."""
    topic = Topics.for_namespace(settings.topic_namespace).answers
    where = (await partitions_of(settings, [topic], list(requests)))[topic]
    since: dict[TopicPartition, float] = {}
    for rid, created in requests.items():
        tp = TopicPartition(topic, where[rid])
        since[tp] = min(since.get(tp, created), created) - lookback_s
    consumer = keyed_consumer(settings)
    await consumer.start()
    found: dict[str, Answer] = {}
    try:
        consumer.assign(list(since))
        ends = await seek_since(consumer, since)
        async with asyncio.timeout(timeout_s):
            while await behind(consumer, ends):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        rid = record.key.decode(errors="replace") if record.key else ""
                        if rid in requests and rid not in found and record.value is not None and (
                                proven is None or await proven(record, topic)):
                            try:
                                found[rid] = Answer.model_validate_json(record.value)
                            except ValidationError:
                                log.warning("skipping an invalid Answer record of %s", rid)
    finally:
        await consumer.stop()
    return found
