"""Duplicate delivery on the real broker: publish again, byte for byte (key, value, headers), every record
a request left on its namespace's topics; then wait until every consumer group has consumed them."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from moe_core.runtime.kafka_clients import client_kwargs
from tests.support.topic_reader import stop_consumer

Record = tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]  # topic, key, value, headers


async def partitions(admin: AIOKafkaAdminClient, topics: list[str]) -> list[TopicPartition]:
    """Every partition of those of `topics` that exist."""
    existing = set(await admin.list_topics())
    wanted = [t for t in topics if t in existing]
    described = await admin.describe_topics(wanted) if wanted else []
    return [TopicPartition(d["topic"], p["partition"]) for d in described for p in d["partitions"]]


async def records_of(bootstrap: str, topics: list[str], key: str) -> list[Record]:
    """Every record keyed `key` on `topics`, read from the start up to their current ends (no group)."""
    admin = AIOKafkaAdminClient(**client_kwargs(bootstrap=bootstrap))
    await admin.start()
    try:
        parts = await partitions(admin, topics)
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(**client_kwargs(bootstrap=bootstrap), group_id=None, enable_auto_commit=False,
                                fetch_max_wait_ms=10)
    await consumer.start()
    try:
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        found: list[Record] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                found += [(r.topic, r.key, r.value, list(r.headers)) for r in records
                          if r.key is not None and r.key.decode(errors="replace") == key]
        return found
    finally:
        await stop_consumer(consumer)


async def publish_again(bootstrap: str, records: list[Record]) -> None:
    producer = AIOKafkaProducer(**client_kwargs(bootstrap=bootstrap), acks="all", linger_ms=0,
                                max_request_size=16 * 1024 * 1024)
    await producer.start()
    try:
        for topic, key, value, headers in records:
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


async def wait_consumed(bootstrap: str, topics: list[str], timeout_s: float = 90) -> None:
    """Until every consumer group's committed offsets reach the current end of `topics` (lag 0)."""
    admin = AIOKafkaAdminClient(**client_kwargs(bootstrap=bootstrap))
    consumer = AIOKafkaConsumer(**client_kwargs(bootstrap=bootstrap), group_id=None)
    await admin.start()
    await consumer.start()
    try:
        parts = await partitions(admin, topics)
        assert parts, f"none of {topics} exists"
        ends = await consumer.end_offsets(parts)
        loop = asyncio.get_running_loop()
        end_time = loop.time() + timeout_s
        while True:
            behind = []
            for group, _ in await admin.list_consumer_groups():
                committed = await admin.list_consumer_group_offsets(group)
                behind += [(group, tp) for tp, meta in committed.items()
                           if tp in ends and meta.offset < ends[tp]]
            if not behind:
                return
            assert loop.time() < end_time, f"consumer groups still behind after {timeout_s}s: {behind[:5]}"
            await asyncio.sleep(0.2)
    finally:
        await stop_consumer(consumer)
        await admin.close()
