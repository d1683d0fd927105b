"""One Kafka record as an audit record: where it was (topic, partition, offset, broker time), who published
it, and a short summary of its payload (what an auditor reads first)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from moe_core.contracts import TOPIC_MESSAGES, Topics, headers

SUMMARY_TEXT = 400  # characters kept of free text (answers, instructions, results) in a summary


@dataclass(frozen=True)
class AuditRecord:
    topic: str
    partition: int
    offset: int
    broker_ts: datetime
    response_id: str
    tenant_id: str
    message_type: str
    stage: str
    created_at: datetime | None
    payload: dict[str, Any] = field(default_factory=dict)

    def identity(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    def summary(self) -> dict[str, Any]:
        return summarize(self.message_type, self.payload)

    def as_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset,
                "broker_timestamp": iso(self.broker_ts), "created_at": iso(self.created_at),
                "stage": self.stage, "message_type": self.message_type, "response_id": self.response_id,
                "tenant_id": self.tenant_id, "summary": self.summary()}


_TWO = [f"{i:02d}" for i in range(100)]


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC, "Z" for its offset: isoformat's text (microseconds only when there are any), formatted here
    with fewer instructions (issue 52: a quarter of a checkpoint's CPU went to isoformat, re-deriving the signed
    content of stored rows, whose times asyncpg returns in UTC)."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    if value.year < 1000:  # isoformat pads the year to four digits
        return value.isoformat().replace("+00:00", "Z")
    text = (f"{value.year}-{_TWO[value.month]}-{_TWO[value.day]}T{_TWO[value.hour]}:{_TWO[value.minute]}:"
            f"{_TWO[value.second]}")
    return f"{text}.{str(value.microsecond + 1_000_000)[1:]}Z" if value.microsecond else text + "Z"


def from_millis(ms: int) -> datetime:
    """Kafka's millisecond timestamps, exactly (no float rounding)."""
    return datetime.fromtimestamp(ms // 1000, UTC) + timedelta(milliseconds=ms % 1000)


def message_types(topics: Topics) -> dict[str, str]:
    """topic name -> message model name."""
    return {getattr(topics, attr): model for attr, model in TOPIC_MESSAGES.items()}


def from_kafka(topic: str, partition: int, offset: int, timestamp_ms: int, key: bytes | None,
               value: bytes | None, hdrs: dict[str, str], types: dict[str, str]) -> AuditRecord | None:
    """None for a record that is not a request's message (no key and no response_id, or not JSON)."""
    try:
        payload = json.loads(value or b"")
    except (json.JSONDecodeError, UnicodeDecodeError):
        payload = {"unparsed": (value or b"").decode("utf-8", errors="replace")[:SUMMARY_TEXT]}
    if not isinstance(payload, dict):
        payload = {"unparsed": str(payload)[:SUMMARY_TEXT]}
    rid = payload.get("response_id") or hdrs.get(headers.RESPONSE_ID) or (key or b"").decode("utf-8", "replace")
    if not rid:
        return None
    message_type = hdrs.get(headers.MESSAGE_TYPE) or types.get(topic, "unknown")
    tenant = payload.get("tenant_id") or (_inner_tenant(payload) if message_type == "DeadLetter" else None)
    stage = hdrs.get(headers.PRODUCER) or str(payload.get("consumer") or "unknown")
    return AuditRecord(
        topic=topic, partition=partition, offset=offset,
        broker_ts=from_millis(timestamp_ms), response_id=str(rid)[:128],
        tenant_id=str(tenant or "-")[:128], message_type=message_type, stage=stage,
        created_at=_parse_time(payload.get("created_at")), payload=payload,
    )


def _inner_tenant(letter: dict[str, Any]) -> str | None:
    """A dead letter is not an envelope: its tenant is the one of the message it carries, if that parses."""
    try:
        inner = json.loads(letter.get("payload") or "")
    except (json.JSONDecodeError, TypeError):
        return None
    return inner.get("tenant_id") if isinstance(inner, dict) else None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _text(value: Any) -> str:
    # keys sorted: a payload read back from the store (stored sorted) summarises as the one read from the topic
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= SUMMARY_TEXT else text[:SUMMARY_TEXT] + "…"


def _usage(payload: dict[str, Any]) -> dict[str, int] | None:
    usage = payload.get("usage")
    return usage if isinstance(usage, dict) and any(usage.values()) else None


def summarize(message_type: str, p: dict[str, Any]) -> dict[str, Any]:
    """What an auditor needs of a payload: plan tasks, models and servers, tool calls with their arguments and
    results, graph facts, sources, the critic's verdict, cache hits, usage, errors, dead letters."""
    out: dict[str, Any]
    if message_type == "ChatRequest":
        last: dict[str, Any] = next((m for m in reversed(p.get("messages") or []) if m.get("role") == "user"), {})
        out = {"mode": p.get("mode"), "question": _text(last.get("content", "")), "stream": p.get("stream"),
               "tools": [t.get("function", {}).get("name") for t in p.get("tools") or []],
               "replay_of": p.get("replay_of")}
    elif message_type == "Plan":
        out = {"source": p.get("source"), "planner_model": p.get("planner_model"), "complexity": p.get("complexity"),
               "tasks": [{"task_id": t.get("task_id"), "kind": t.get("kind"), "category": t.get("category"),
                          "tool": t.get("tool"), "args": t.get("args") or None} for t in p.get("tasks") or []],
               "usage": _usage(p)}
    elif message_type in ("ExpertTask", "ToolTask", "ResearchTask", "GraphTask"):
        out = {"task_id": p.get("task_id"), "category": p.get("category"), "tool": p.get("tool"),
               "args": p.get("args"), "queries": p.get("queries"), "instruction": _text(p.get("instruction", ""))
               if p.get("instruction") else None}
    elif message_type == "TaskResult":
        data = p.get("data") or {}
        out = {"task_id": p.get("task_id"), "kind": p.get("kind"), "category": p.get("category"),
               "model": p.get("model"), "server": p.get("server"), "confidence": p.get("confidence"),
               "duration_ms": p.get("duration_ms"), "usage": _usage(p), "error": p.get("error"),
               "content": _text(p.get("content", "")), "sources": [s.get("ref") for s in p.get("sources") or []],
               "tool_result": _text(data) if p.get("kind") == "tool" and data else None,
               "graph_facts": data.get("facts") or data.get("relations") if p.get("kind") == "graph" else None}
    elif message_type in ("Answer", "Draft"):
        a = p.get("answer", p) if message_type == "Draft" else p
        out = {"content": _text(a.get("content", "")), "finish_reason": a.get("finish_reason"),
               "cache_hit": a.get("cache_hit"), "experts_used": a.get("experts_used"),
               "models_used": a.get("models_used"), "model_calls": a.get("model_calls"), "usage": _usage(a),
               "sources": [s.get("ref") for s in a.get("sources") or []], "missing": a.get("missing") or None,
               "error": a.get("error"), "tool_calls": a.get("tool_calls") or None}
        if message_type == "Draft":
            out["categories"] = p.get("categories")
    elif message_type == "Progress":
        out = {"stage": p.get("stage"), "event": p.get("event"), "detail": _text(p.get("detail", "")),
               "task_id": p.get("task_id")}
        if p.get("stage") == "critic":
            out["critic_verdict"] = p.get("event")
    elif message_type == "AuditEvent":
        out = {"actor": p.get("actor"), "action": p.get("action"), "subject": p.get("subject"),
               "reason": p.get("reason"), "details": p.get("details")}
    elif message_type == "DeadLetter":
        out = {"dead_letter": True, "consumer": p.get("consumer"), "source_topic": p.get("source_topic"),
               "reason": _text(p.get("reason", "")), "error_type": p.get("error_type")}
    elif message_type == "Feedback":
        out = {"rating": p.get("rating"), "comment": _text(p.get("comment", "")), "source": p.get("source", "user")}
    elif message_type == "AnswerDelta":
        out = {"seq": p.get("seq"), "channel": p.get("channel")}
    else:
        out = {k: _text(v) for k, v in p.items() if k not in ("response_id", "tenant_id", "trace", "deadline_at")}
    return {k: v for k, v in out.items() if v is not None}
