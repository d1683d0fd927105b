"""`replay verify`'s second witness: while the topics still hold a request, every stored record is compared
with the Kafka record it was derived from (same topic, partition and offset), field by field. codex-lineage's
committed offsets tell a record it must already have stored (missing: deleted) from one it has not reached."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from codex_lineage.reader import read_records
from codex_lineage.settings import LineageSettings
from moe_core.audit.entries import record_values
from moe_core.audit.records import AuditRecord, iso
from moe_core.audit.store import AuditStore
from moe_core.contracts import Topics
from moe_core.kafka_clients import client_kwargs

FIELDS = ("response_id", "message_type", "stage", "broker_ts", "created_at", "payload")


def _fields(values: dict[str, Any], tenant: str) -> dict[str, Any]:
    out = {name: iso(values[name]) if name.endswith(("_ts", "_at")) else values[name] for name in FIELDS}
    return {**out, "tenant_id": tenant}


async def _offsets(bootstrap: str, group: str, parts: list[TopicPartition]) -> tuple[dict[Any, int], dict[Any, int]]:
    """(codex-lineage's committed offsets, the first offsets Kafka still retains) of these partitions."""
    admin = AIOKafkaAdminClient(**client_kwargs(bootstrap=bootstrap), client_id="moe-replay")
    await admin.start()
    try:
        committed = {tp: meta.offset for tp, meta in (await admin.list_consumer_group_offsets(group)).items()}
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(**client_kwargs(bootstrap=bootstrap), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        first = await consumer.beginning_offsets(parts) if parts else {}
    finally:
        await consumer.stop()
    return committed, first


async def compare_with_topics(settings: LineageSettings, store: AuditStore,
                              response_id: str) -> tuple[list[dict[str, str]], list[str], int]:
    """(problems, notes, how many stored records were compared with their Kafka record)."""
    topics = Topics.for_namespace(settings.topic_namespace)
    kafka: dict[str, AuditRecord] = {r.identity(): r async for r in read_records(settings.kafka_bootstrap, topics,
                                                                                 response_id=response_id)}
    rows = await store.pool.fetch("SELECT * FROM audit_log WHERE response_id=$1 AND kind='record'", response_id)
    stored = {f"{r['topic']}/{r['partition']}/{r['offset']}": r for r in rows}
    parts = sorted({TopicPartition(r["topic"], r["partition"]) for r in rows}
                   | {TopicPartition(r.topic, r.partition) for r in kafka.values()})
    committed, first = await _offsets(settings.kafka_bootstrap, settings.group_id(), parts)
    problems: list[dict[str, str]] = []
    notes: list[str] = []
    compared = 0
    for name, record in sorted(kafka.items()):
        row = stored.get(name)
        if row is None:
            tp = TopicPartition(record.topic, record.partition)
            if record.offset < committed.get(tp, -1):
                problems.append({"record": name, "problem": "missing: the Kafka record is not in the store, though "
                                                            "codex-lineage's group is past it (deleted from the "
                                                            "store, or its offsets were moved past it unrecorded)"})
            else:
                notes.append(f"{name}: not recorded yet (codex-lineage has not reached it)")
            continue
        compared += 1
        theirs, ours = _fields(record_values(record, 0), record.tenant_id), _fields(dict(row), row["tenant_id"])
        changed = [k for k in theirs if theirs[k] != ours[k]]
        if changed:
            problems.append({"record": name, "problem": f"differs from the Kafka record it was stored from: "
                                                        f"{', '.join(changed)} changed"})
    for name, row in sorted(stored.items()):
        if name in kafka:
            continue
        if row["offset"] >= first.get(TopicPartition(row["topic"], row["partition"]), row["offset"] + 1):
            problems.append({"record": name, "problem": "not in Kafka: the topic holds no such record of this "
                                                        "request (inserted, or its position was changed)"})
        else:
            notes.append(f"{name}: no longer in Kafka (retention, or records deleted from the topic; compared "
                         "with the chain only)")
    return problems, notes, compared
