"""Kafka alone, with the fleet's client settings: how long a publish waits for its acknowledgement
(acks=all, idempotent, linger 0) and how long a record takes from ``send`` to a consumer
(fetch_max_wait_ms=10, as in moe_core.runtime.bus). One message at a time, on a topic of the bench namespace."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.stats import summary_ms
from moe_core.runtime.bus import ensure_topics
from moe_core.runtime.kafka_clients import client_kwargs


async def probe(bootstrap: str, topic: str, messages: int = 200) -> dict[str, object]:
    await ensure_topics(bootstrap, [topic], 1)
    producer = AIOKafkaProducer(**client_kwargs(bootstrap=bootstrap), acks="all", enable_idempotence=True, linger_ms=0)
    consumer = AIOKafkaConsumer(**client_kwargs(bootstrap=bootstrap), group_id=None, enable_auto_commit=False,
                                fetch_max_wait_ms=10)
    await producer.start()
    await consumer.start()
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    await consumer.seek_to_end(tp)
    await consumer.position(tp)
    sent: dict[bytes, float] = {}
    transit: list[float] = []
    acks: list[float] = []
    try:
        for i in range(messages):
            key = str(i).encode()
            sent[key] = start = time.perf_counter()
            await producer.send_and_wait(topic, b"x" * 600, key=key)  # about the size of a small envelope
            acks.append(time.perf_counter() - start)
            while len(transit) <= i:
                batch = await consumer.getmany(tp, timeout_ms=5000)
                now = time.perf_counter()
                if not batch:
                    raise TimeoutError("the probe consumer received nothing for 5 s")
                for record in batch.get(tp, []):
                    transit.append(now - sent[record.key or b""])
    finally:
        await producer.stop()
        await consumer.stop()
    return {"messages": messages, "publish_ack_ms": summary_ms(acks), "produce_to_consume_ms": summary_ms(transit)}


def run(bootstrap: str, topic: str, messages: int = 200) -> dict[str, object]:
    return asyncio.run(probe(bootstrap, topic, messages))
