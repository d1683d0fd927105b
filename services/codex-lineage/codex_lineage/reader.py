"""Read the fleet's topics directly (no consumer group, nothing committed): every record in a time range,
positioned by timestamp (offsets_for_times). The replay command's source: it needs neither codex-lineage
nor its store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner

from moe_core.audit.records import AuditRecord, from_kafka, message_types
from moe_core.contracts import Topics
from moe_core.runtime.kafka_clients import client_kwargs


async def partitions(bootstrap: str, names: list[str]) -> list[TopicPartition]:
    """Every partition of the named topics that exist."""
    admin = AIOKafkaAdminClient(**client_kwargs(bootstrap=bootstrap), client_id="moe-replay")
    await admin.start()
    try:
        found = await admin.describe_topics(names)
    finally:
        await admin.close()
    return [TopicPartition(t["topic"], p["partition"]) for t in found if t["error_code"] == 0
            for p in sorted(t["partitions"], key=lambda p: p["partition"])]


def _partition_of(key: str, parts: list[TopicPartition], topic: str) -> int:
    """The producers' partition for a key (the default murmur2 partitioner, as FastStream/aiokafka use)."""
    numbers = sorted(tp.partition for tp in parts if tp.topic == topic)
    return int(DefaultPartitioner()(key.encode(), numbers, numbers))


async def read_records(bootstrap: str, topics: Topics, since: datetime | None = None,
                       until: datetime | None = None, response_id: str | None = None,
                       tenant: str | None = None) -> AsyncIterator[AuditRecord]:
    """The records of every topic with broker time in [since, until) that are still retained, up to the end
    offsets at the time of the call. Filtered by response_id (the record key) and tenant when given."""
    types = message_types(topics)
    consumer = AIOKafkaConsumer(**client_kwargs(bootstrap=bootstrap), enable_auto_commit=False, group_id=None,
                                auto_offset_reset="earliest", fetch_max_wait_ms=100)
    parts = await partitions(bootstrap, topics.recorded())
    if response_id:  # every message of a request is keyed by its id: only that key's partition of each topic
        parts = [tp for tp in parts if tp.partition == _partition_of(response_id, parts, tp.topic)]
    if not parts:
        return
    await consumer.start()
    try:
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        starts = await consumer.beginning_offsets(parts)
        if since is not None:
            found = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in parts})
            starts = {tp: (found[tp].offset if found.get(tp) is not None else ends[tp]) for tp in parts}
        todo = {tp for tp in parts if starts[tp] < ends[tp]}
        for tp in parts:
            consumer.seek(tp, starts[tp])
        until_ms = int(until.timestamp() * 1000) if until is not None else None
        want_key = response_id.encode() if response_id else None
        while todo:
            batch = await consumer.getmany(*todo, timeout_ms=1000)
            for tp, messages in batch.items():
                for msg in messages:
                    if msg.offset >= ends[tp] or (until_ms is not None and msg.timestamp >= until_ms):
                        todo.discard(tp)
                        break
                    if want_key is not None and msg.key != want_key:
                        continue
                    hdrs = {k: v.decode("utf-8", "replace") for k, v in (msg.headers or [])}
                    record = from_kafka(msg.topic, msg.partition, msg.offset, msg.timestamp, msg.key, msg.value,
                                        hdrs, types)
                    if record is None or (response_id and record.response_id != response_id):
                        continue
                    if tenant is None or record.tenant_id == tenant:
                        yield record
            for tp in list(todo):
                if await consumer.position(tp) >= ends[tp]:
                    todo.discard(tp)
    finally:
        await consumer.stop()
