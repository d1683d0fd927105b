"""`replay verify`'s second witness: while the topics still hold a request, every stored record is compared
with the Kafka record it was derived from (same topic, partition and offset), field by field. codex-lineage's
committed offsets tell a record it must already have stored (missing: deleted) from one it has not reached.

Only the part of each topic the request can be in is read: from a minute before its earliest stored record when the
store holds its ChatRequest (positioned by time, offsets_for_times), not from the topic's first offset (a year's
retention is a year's read per verify)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from codex_lineage.reader import read_records
from codex_lineage.settings import LineageSettings
from moe_core.audit.entries import record_values
from moe_core.audit.records import AuditRecord, iso
from moe_core.audit.store import AuditStore
from moe_core.contracts import Topics
from moe_core.runtime.kafka_clients import client_kwargs
from moe_core.runtime.retention import retention_days

SKEW = timedelta(minutes=1)  # producers' clocks (a record's CreateTime) may be this far behind the gateway's
FIELDS = ("response_id", "message_type", "stage", "broker_ts", "created_at", "payload")


def _fields(values: dict[str, Any], tenant: str) -> dict[str, Any]:
    out = {name: iso(values[name]) if name.endswith(("_ts", "_at")) else values[name] for name in FIELDS}
    return {**out, "tenant_id": tenant}


async def _committed(bootstrap: str, group: str) -> dict[Any, int]:
    """codex-lineage's committed offsets."""
    admin = AIOKafkaAdminClient(**client_kwargs(bootstrap=bootstrap), client_id="moe-replay")
    await admin.start()
    try:
        return {tp: meta.offset for tp, meta in (await admin.list_consumer_group_offsets(group)).items()}
    finally:
        await admin.close()


async def _first(bootstrap: str, parts: list[TopicPartition]) -> dict[Any, int]:
    """The first offsets Kafka still retains of these partitions."""
    if not parts:
        return {}
    consumer = AIOKafkaConsumer(**client_kwargs(bootstrap=bootstrap), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        return dict(await consumer.beginning_offsets(parts))
    finally:
        await consumer.stop()


def read_from(rows: list[Any]) -> datetime | None:
    """Where the request's records begin on the topics: a minute (SKEW) before its earliest stored record, when the
    store holds its ChatRequest (a request's first record: the gateway makes its response_id for it, and every
    other record of it follows). Every stored record is at or after that time, so each is compared. Without its
    ChatRequest (not recorded yet, deleted, or an exact repeat answered at the edge): None, every retained record."""
    if not any(r["message_type"] == "ChatRequest" for r in rows):
        return None
    return min(r["broker_ts"] for r in rows) - SKEW


async def compare_with_topics(settings: LineageSettings, store: AuditStore,
                              response_id: str) -> tuple[list[dict[str, str]], list[str], int]:
    """(problems, notes, how many stored records were compared with their Kafka record)."""
    topics = Topics.for_namespace(settings.topic_namespace)
    # codex-lineage's own group, whoever compares (make replay runs as `replay` with codex-lineage's read access),
    # read before the store: a record below these offsets was stored before the store is read
    recorder = settings.model_copy(update={"service_name": "codex-lineage"})
    committed = await _committed(settings.kafka_bootstrap, recorder.group_id())
    rows = await store.pool.fetch("SELECT * FROM audit_log WHERE response_id=$1 AND kind='record'", response_id)
    stored = {f"{r['topic']}/{r['partition']}/{r['offset']}": r for r in rows}
    kafka: dict[str, AuditRecord] = {r.identity(): r async for r in read_records(
        settings.kafka_bootstrap, topics, since=read_from(rows), response_id=response_id)}
    parts = sorted({TopicPartition(r["topic"], r["partition"]) for r in rows}
                   | {TopicPartition(r.topic, r.partition) for r in kafka.values()})
    first = await _first(settings.kafka_bootstrap, parts)
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
    kept, now = retention_of(settings, topics), datetime.now(UTC)
    for name, row in sorted(stored.items()):
        if name in kafka:
            continue
        start = first.get(TopicPartition(row["topic"], row["partition"]), row["offset"] + 1)
        problem, note = not_in_kafka(row, start, kept.get(row["topic"], -1), now)
        if problem:
            problems.append({"record": name, "problem": problem})
        else:
            notes.append(f"{name}: {note}")
    return problems, notes, compared


def not_in_kafka(row: Any, log_start: int, days: int, now: datetime) -> tuple[str, str]:
    """(problem, note) of a stored record its topic no longer holds: within the log (inserted or moved), gone
    before the topic's retention (`days`, -1: forever) could have removed it (deleted from the topic), or
    simply older than the retention (a note: compared with the chain only)."""
    if row["offset"] >= log_start:
        return ("not in Kafka: the topic holds no such record of this request (inserted, or its position was "
                "changed)"), ""
    age = now - row["broker_ts"]
    if days == -1 or age < timedelta(days=days):
        keeps = "forever" if days == -1 else f"{days} days"
        return (f"deleted from Kafka before its retention ({age.total_seconds() / 3600:.1f} h old, the topic keeps "
                f"{keeps}): records were removed from the topic (delete-records)"), ""
    return "", f"no longer retained by Kafka (older than the topic's {days} days; compared with the chain only)"


def retention_of(settings: LineageSettings, topics: Topics) -> dict[str, int]:
    """Each topic's retention in days as the fleet sets it (moe_core.runtime.retention; -1: forever)."""
    days = retention_days(settings.topic_retention_days)
    return {getattr(topics, kind): value for kind, value in days.items() if hasattr(topics, kind)}
