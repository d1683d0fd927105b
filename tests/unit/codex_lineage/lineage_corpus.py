"""Records that reach every branch of codex-lineage's derivation (codex_lineage.lineage), with fixed times and ids:
the corpus whose events are kept in fixtures/lineage-events.json (the events the release before the dict builder
derived from them, so a change of any stored event body is seen)."""

from __future__ import annotations

import json
from typing import Any

from moe_core.audit.records import AuditRecord, from_kafka, message_types
from moe_core.contracts import Topics

TOPICS = Topics.for_namespace("moe")
AT = "2026-11-27T09:00:00.250000+00:00"
STARTED = "2026-11-27T08:59:58.5Z"
TS = 1_795_770_000_123  # the broker's time (ms)
DIGEST = "sha256:" + "ab" * 32
VERSIONS = {"service": "planner", "config": DIGEST, "prompts": {"plan": DIGEST, "a": DIGEST},
            "policies": {"moe/egress": DIGEST}}
USAGE = {"prompt_tokens": 180, "completion_tokens": 240, "total_tokens": 420}


def _env(rid: str, **extra: Any) -> dict[str, Any]:
    return {"response_id": rid, "tenant_id": "acme", "created_at": AT, **extra}


def _results() -> list[tuple[str, str, dict[str, Any]]]:
    sources = [{"kind": "graph", "ref": "rel-2"}, {"kind": "graph", "ref": "rel-1"},
               {"kind": "document", "ref": "doc-1"}, {"kind": "web", "ref": "https://x"}, "not a source"]
    return [
        ("results", "expert-worker", _env("r1", task_id="t1", kind="expert", category="code", model="m1",
                                          server="s1", usage=USAGE, confidence="high", started_at=STARTED,
                                          versions={**VERSIONS, "service": "expert-worker"})),
        ("results", "expert-worker", _env("r1", task_id="t2", category="general", duration_ms=900,
                                          confidence=0.8, usage={"prompt_tokens": 0, "completion_tokens": 0})),
        ("results", "mcp", _env("r1", task_id="t3", kind="tool", data={"tool": "calc"}, error="division by zero",
                                server="mcp-1")),
        ("results", "graph-rag", _env("r1", task_id="t4", kind="graph", sources=sources, duration_ms=12.5)),
        ("results", "graph-rag", _env("r1", task_id="t5", kind="graph", sources=[{"kind": "web", "ref": "u"}])),
        ("results", "research", _env("r1", task_id="t6", kind="research", model="m2")),
        ("results", "x-worker", _env("r1", task_id="t7", kind="odd")),
    ]


def _answers() -> list[tuple[str, str, dict[str, Any]]]:
    answer = {"content": "a", "experts_used": ["code", "general"], "usage": USAGE}
    return [
        ("drafts", "merger", _env("r1", answer=answer, categories=["code"], started_at=STARTED)),
        ("drafts", "merger", _env("r1", answer={"error": {"message": "judge failed"}})),
        ("guard", "critic", _env("r1", answer=answer)),
        ("answers", "critic", _env("r1", content="a", reasoning="I corrected the draft", usage=USAGE)),
        ("answers", "critic", _env("r1", content="a", reasoning="confirmed", error={"message": "late"})),
        ("answers", "merger", _env("r1", content="", experts_used=[], error={"message": "no expert answered",
                                                                            "detail": "3 timeouts",
                                                                            "code": "upstream"})),
        ("answers", "merger", _env("r1", content="", error={"message": "x" * 5000})),
        ("answers", "planner", _env("r2", content="cached", cache_hit=True, cache_key="ck-1", usage=USAGE)),
        ("answers", "planner", _env("r2", content="cached", cache_hit=True)),
        ("answers", "gateway", _env("r2", content="repeat", started_at="not a time")),
        ("answers", "guardrail", _env("r2", content="ok", finish_reason="stop", usage=USAGE)),
    ]


def _others() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        ("requests", "gateway", _env("r1", mode="moe-orchestrator", messages=[{"role": "user", "content": "q"}],
                                     versions=VERSIONS)),
        ("requests", "gateway", {"response_id": "r3", "tenant_id": "acme", "mode": "moe-orchestrator-code",
                                 "replay_of": "r1", "versions": {"config": DIGEST, "prompts": "bad"}}),
        ("requests", "gateway", _env("r4", versions={"service": "gateway"})),
        ("plans", "planner", _env("r1", source="llm", planner_model="p1", usage=USAGE, versions=VERSIONS,
                                  tasks=[{"task_id": "t1", "kind": "expert"}, {"task_id": "t3", "kind": "tool"},
                                         {"task_id": "t4", "kind": "graph"}, {"task_id": "t6", "kind": "research"},
                                         {"task_id": "t7", "kind": "odd"}])),
        ("plans", "planner", _env("r2", source="cache", tasks=[])),
        ("audit", "graph-ingest", _env("r1", actor="graph-ingest", action="ingested", subject="s",
                                       reason="learned", details={"event_id": "ev-1", "triples": 3})),
        ("audit", "control-plane", _env("r5", actor="control-plane", action="import_graph_applied",
                                        subject="imp-1", reason="r" * 600)),
        ("audit", "control-plane", _env("r5", subject="key-1")),
        ("feedback", "gateway", _env("r1", rating=5, comment="good")),
        ("deadletter", "planner", {"response_id": "r6", "consumer": "merger", "source_topic": "moe.results.v1",
                                   "error_type": "ValidationError", "reason": "bad payload",
                                   "payload": json.dumps({"tenant_id": "acme"})}),
        ("deadletter", "gateway", {"response_id": "r7", "reason": "no consumer"}),
        ("progress", "planner", _env("r1", stage="planner", event="planned")),
        ("deltas", "merger", _env("r1", seq=1, channel="content")),
        ("usage", "gateway", _env("r1", prompt_tokens=1)),
    ]


def corpus() -> list[AuditRecord]:
    """The records, each at its own offset."""
    out = []
    for offset, (attr, producer, payload) in enumerate(_others() + _results() + _answers()):
        record = from_kafka(getattr(TOPICS, attr), 0, offset, TS + offset, payload["response_id"].encode(),
                            json.dumps(payload).encode(), {"x-moe-producer": producer}, message_types(TOPICS))
        assert record is not None
        out.append(record)
    return out
