"""How long each topic keeps its messages: the audit trail (replay timeline, rebuilds) reads the topics
themselves, so retention is a record-keeping decision, made here and documented in docs/audit.md."""

from __future__ import annotations

import json

DAY_MS = 86_400_000
# topic kind (Topics field name) -> days. Requests, plans, tasks, results and answers: 30 days; the audit
# topic (knowledge decisions, imports), dead letters and usage charges (the usage rows can be rebuilt from
# them): a year; live-only events: 7 days.
DEFAULT_RETENTION_DAYS: dict[str, int] = {
    "requests": 30, "plans": 30, "tasks_expert": 30, "tasks_mcp": 30, "tasks_research": 30, "tasks_graph": 30,
    "results": 30, "answers": 30, "drafts": 30, "guard": 30, "housekeeping": 30, "feedback": 90, "ingest": 90,
    "ontology_gaps": 90, "linting": 90,
    "audit": 365, "deadletter": 365, "usage": 365, "progress": 7, "deltas": 7, "cancel": 7,
    "audit_checkpoints": -1,  # signed checkpoints of the audit store: small, and proof for as long as it is kept
    "cache_entries": 7,  # compacted; the semantic cache's entries expire after 7 days (MOE_CACHE_TTL_S) anyway
}


def topic_label(kind: str) -> str:
    """A Topics field as the docs and the chart name the topic: tasks_expert -> tasks.expert, ontology_gaps ->
    ontology-gaps."""
    return kind.replace("_", ".", 1) if kind.startswith("tasks_") else kind.replace("_", "-")


KIND_OF_LABEL = {topic_label(kind): kind for kind in DEFAULT_RETENTION_DAYS}


def retention_days(overrides: str = "") -> dict[str, int]:
    """The defaults with MOE_TOPIC_RETENTION_DAYS applied ({kind or label: days}; -1 keeps forever): the chart's
    topics.retentionDays names topics by label (tasks.expert), the settings by kind (tasks_expert)."""
    days = dict(DEFAULT_RETENTION_DAYS)
    if overrides.strip():
        extra = json.loads(overrides)
        if not isinstance(extra, dict):
            raise ValueError("MOE_TOPIC_RETENTION_DAYS must be a JSON object {topic kind: days}")
        for key, value in extra.items():
            kind = KIND_OF_LABEL.get(key, key)
            if kind not in DEFAULT_RETENTION_DAYS:
                raise ValueError(f"unknown topic kind {key!r} in MOE_TOPIC_RETENTION_DAYS")
            if not isinstance(value, int) or (value < 1 and value != -1):
                raise ValueError(f"retention of {key!r} must be a whole number of days >= 1 (or -1: forever)")
            days[kind] = value
    return days


def retention_ms(days: int) -> str:
    return "-1" if days == -1 else str(days * DAY_MS)
