"""Duplicate delivery on the real broker: publish again, byte for byte (key, value, headers), every record
a request left on its namespace's topics; then wait until every consumer group has consumed them."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from tests.support.topic_reader import stop_consumer

Record = tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]  # topic, key, value, headers


async def records_of(bootstrap: str, topics: list[str], key: str) -> list[Record]:
    """Every record keyed `key` on `topics`, read from the start up to their current ends (no group)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                fetch_max_wait_ms=10)
    await consumer.start()
    try:
        existing = await consumer.topics()
        parts = [TopicPartition(t, p) for t in topics if t in existing
                 for p in consumer.partitions_for_topic(t) or ()]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        found: list[Record] = []
        while any(await consumer.position(tp) < end for tp, end in ends.items()):
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                found += [(r.topic, r.key, r.value, list(r.headers)) for r in records
                          if r.key is not None and r.key.decode(errors="replace") == key]
        return found
    finally:
        await stop_consumer(consumer)


async def publish_again(bootstrap: str, records: list[Record]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0,
                                max_request_size=16 * 1024 * 1024)
    await producer.start()
    try:
        for topic, key, value, headers in records:
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


async def wait_consumed(bootstrap: str, topics: list[str], timeout_s: float = 90) -> None:
    """Until every consumer group's committed offsets reach the current end of `topics` (lag 0)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await admin.start()
    await consumer.start()
    try:
        existing = await consumer.topics()
        parts = [TopicPartition(t, p) for t in topics if t in existing
                 for p in consumer.partitions_for_topic(t) or ()]
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
