"""Each request's journey through Kafka, from the messages' own timestamps.

After the load, every pipeline topic of the benchmark's namespace is read from the start (no consumer
group, nothing committed). Per response_id we keep, for each message, the envelope's ``created_at``
(set by the producing stage when it built the message) and the Kafka record timestamp (set by the
producer when it appended the record). Hops are differences of those, on one machine's clock.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from moe_core.contracts import Topics
from moe_core.runtime.kafka_clients import client_kwargs

TASK_TOPICS = ("tasks_expert", "tasks_mcp", "tasks_research", "tasks_graph")
READ = ("requests", "plans", *TASK_TOPICS, "results", "drafts", "answers")

# hop name -> what it measures (shown in the report)
HOPS: dict[str, str] = {
    "gateway publish": "request record time - request created_at (gateway serialises and hands to the producer)",
    "request -> plan": "plan created_at - request record time (delivery to the planner + planning incl. its LLM call)",
    "plan -> tasks": "last task record time - plan record time (the planner publishes the tasks after the plan)",
    "task -> result": "result created_at - task record time, slowest task (delivery + expert incl. LLM call)",
    "result -> answer": "answer created_at - last result record time (delivery to the merger + merging incl. judge)",
    "answer publish": "answer record time - answer created_at (merger stores the answer, hands it to the producer)",
    "request -> answer": "answer record time - request record time (everything between the two Kafka appends)",
}


def _ts(created: str | None) -> float | None:
    return datetime.fromisoformat(created).timestamp() if created else None


def _entry(data: dict[str, Any], record_ms: int) -> dict[str, Any]:
    return {"created": _ts(data.get("created_at")), "ts": record_ms / 1000}


async def read_traces(bootstrap: str, namespace: str, rids: set[str]) -> dict[str, dict[str, Any]]:
    """response_id -> {request, plan, tasks[], results[], draft, answer, messages{topic: count}} for the given
    response ids (every message is keyed by its response_id)."""
    topics = Topics.for_namespace(namespace)
    names = {getattr(topics, key): key for key in READ}
    counted = {name: name.removeprefix(f"{namespace}.") for name in topics.all()}  # every topic: counts by key
    partitions = await _partitions(bootstrap, list(counted))
    traces: dict[str, dict[str, Any]] = {}
    if not partitions:
        return traces
    consumer = AIOKafkaConsumer(**client_kwargs(bootstrap=bootstrap), group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        todo = {tp for tp, offset in end.items() if offset > 0}
        while todo:
            batch = await consumer.getmany(*todo, timeout_ms=1000, max_records=5000)
            for tp, records in batch.items():
                for record in records:
                    key = record.key.decode(errors="replace") if record.key else None
                    if key not in rids:
                        continue
                    trace = traces.setdefault(key, {"tasks": {}, "results": {}, "messages": {}})
                    short = counted[tp.topic]
                    trace["messages"][short] = trace["messages"].get(short, 0) + 1
                    if tp.topic in names:
                        _add(trace, names[tp.topic], record.value, record.timestamp)
            todo = {tp for tp in todo if await consumer.position(tp) < end[tp]}
    finally:
        await consumer.stop()
    return traces


async def _partitions(bootstrap: str, topics: list[str]) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(**client_kwargs(bootstrap=bootstrap), client_id="bench-trace")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        described = await admin.describe_topics([t for t in topics if t in existing])
    finally:
        await admin.close()
    return [TopicPartition(d["topic"], p["partition"]) for d in described if not d.get("error_code")
            for p in d.get("partitions", [])]


def _add(trace: dict[str, Any], kind: str, value: bytes | None, record_ms: int) -> None:
    if not value:
        return
    data = orjson.loads(value)
    entry = _entry(data, record_ms)
    if kind == "requests":
        trace.setdefault("request", entry)
    elif kind == "plans":
        tasks = data.get("tasks") or []
        entry |= {"source": data.get("source"), "tasks": len(tasks), "complexity": data.get("complexity"),
                  "experts": sum(1 for t in tasks if t.get("kind", "expert") == "expert")}
        trace.setdefault("plan", entry)
    elif kind in TASK_TOPICS:
        trace["tasks"].setdefault(data.get("task_id"), entry | {"topic": kind})
    elif kind == "results":
        trace["results"].setdefault(data.get("task_id"), entry)
    elif kind == "drafts":
        trace.setdefault("draft", entry)
    elif kind == "answers":
        usage = data.get("usage") or {}
        entry |= {"cache_hit": bool(data.get("cache_hit")), "model_calls": int(data.get("model_calls") or 0),
                  "tokens": int(usage.get("prompt_tokens", 0)) + int(usage.get("completion_tokens", 0)),
                  "error": (data.get("error") or {}).get("code")}
        trace.setdefault("answer", entry)


def hops(trace: dict[str, Any]) -> dict[str, float]:
    """The hops (seconds) this request's messages allow to compute."""
    out: dict[str, float] = {}
    request, plan, answer = trace.get("request"), trace.get("plan"), trace.get("answer")
    tasks, results = list(trace["tasks"].values()), trace["results"]

    def put(name: str, end: float | None, start: float | None) -> None:
        if end is not None and start is not None:
            out[name] = end - start

    if request:
        put("gateway publish", request["ts"], request["created"])
    if request and plan:
        put("request -> plan", plan["created"], request["ts"])
    if plan and tasks:
        put("plan -> tasks", max(t["ts"] for t in tasks), plan["ts"])
    pairs = [(results[tid]["created"], task["ts"]) for tid, task in trace["tasks"].items() if tid in results]
    if pairs and all(r is not None for r, _ in pairs):
        out["task -> result"] = max(r - t for r, t in pairs)
    if answer and results:
        put("result -> answer", answer["created"], max(r["ts"] for r in results.values()))
    if answer:
        put("answer publish", answer["ts"], answer["created"])
    if request and answer:
        put("request -> answer", answer["ts"], request["ts"])
    return out


def read(bootstrap: str, namespace: str, rids: set[str]) -> dict[str, dict[str, Any]]:
    return asyncio.run(read_traces(bootstrap, namespace, rids))
