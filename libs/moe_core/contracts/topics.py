"""Versioned topic names. A breaking change of a message is a new topic version."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Topics:
    """Topic names under one namespace (default `moe`; tests use their own to stay isolated)."""

    requests: str
    plans: str
    tasks_expert: str
    results: str
    progress: str
    answers: str
    deadletter: str
    tasks_mcp: str
    tasks_research: str
    tasks_graph: str
    drafts: str
    deltas: str
    cancel: str
    feedback: str
    ingest: str
    ontology_gaps: str
    linting: str
    audit: str
    audit_checkpoints: str
    usage: str
    cache_entries: str
    guard: str
    housekeeping: str

    @classmethod
    def for_namespace(cls, namespace: str = "moe") -> Topics:
        return cls(
            requests=f"{namespace}.requests.v1",
            plans=f"{namespace}.plans.v1",
            tasks_expert=f"{namespace}.tasks.expert.v1",
            results=f"{namespace}.results.v1",
            progress=f"{namespace}.progress.v1",
            answers=f"{namespace}.answers.v1",
            deadletter=f"{namespace}.deadletter.v1",
            tasks_mcp=f"{namespace}.tasks.mcp.v1",
            tasks_research=f"{namespace}.tasks.research.v1",
            tasks_graph=f"{namespace}.tasks.graph.v1",
            drafts=f"{namespace}.drafts.v1",
            deltas=f"{namespace}.deltas.v1",
            cancel=f"{namespace}.cancel.v1",
            feedback=f"{namespace}.feedback.v1",
            ingest=f"{namespace}.ingest.v1",
            ontology_gaps=f"{namespace}.ontology-gaps.v1",
            linting=f"{namespace}.linting.v1",
            audit=f"{namespace}.audit.v1",
            audit_checkpoints=f"{namespace}.audit-checkpoints.v1",
            usage=f"{namespace}.usage.v1",
            cache_entries=f"{namespace}.cache-entries.v1",
            guard=f"{namespace}.guard.v1",
            housekeeping=f"{namespace}.housekeeping.v1",
        )

    def for_task_kind(self, kind: str) -> str:
        """The topic a planned task of this kind is published to."""
        return {"expert": self.tasks_expert, "tool": self.tasks_mcp, "research": self.tasks_research,
                "graph": self.tasks_graph}[kind]

    def all(self) -> list[str]:
        return [getattr(self, f.name) for f in fields(self)]

    def recorded(self) -> list[str]:
        """The topics whose messages belong to requests (what codex-lineage records and the replay reads):
        all but the audit checkpoints, which codex-lineage publishes about its own record."""
        return [getattr(self, f.name) for f in fields(self) if f.name not in UNRECORDED]


# Which message model travels on which topic (documentation and schema generation).
TOPIC_MESSAGES: dict[str, str] = {
    "requests": "ChatRequest",
    "plans": "Plan",
    "tasks_expert": "ExpertTask",
    "results": "TaskResult",
    "progress": "Progress",
    "answers": "Answer",
    "deadletter": "DeadLetter",
    "tasks_mcp": "ToolTask",
    "tasks_research": "ResearchTask",
    "tasks_graph": "GraphTask",
    "drafts": "Draft",
    "deltas": "AnswerDelta",
    "cancel": "Cancel",
    "feedback": "Feedback",
    "ingest": "IngestEvent",
    "ontology_gaps": "OntologyGap",
    "linting": "LintRequest",
    "audit": "AuditEvent",
    "audit_checkpoints": "AuditCheckpoint",
    "usage": "UsageCharged",
    "cache_entries": "CacheEntry",
    "guard": "Draft",
    "housekeeping": "ChatRequest",
}
# Not part of any request's record: audit checkpoints (keyed by tenant) and the semantic cache's entries (keyed by
# cache_key: derived state, whose answer is recorded on `answers` and whose flag on `feedback`).
UNRECORDED = frozenset({"audit_checkpoints", "cache_entries"})
# The record key of a topic's messages: response_id unless named here.
TOPIC_KEYS: dict[str, str] = {"audit_checkpoints": "tenant_id", "cache_entries": "cache_key"}
# Compacted topics (cleanup.policy): the latest message per key is the state; `delete` too, so entries older than
# the topic's retention go (the cache's entries expire after MOE_CACHE_TTL_S, 7 days, anyway).
COMPACTED = frozenset({"cache_entries"})


def topic_key(field: str) -> str:
    """The message field a topic's records are keyed by."""
    return TOPIC_KEYS.get(field, "response_id")
