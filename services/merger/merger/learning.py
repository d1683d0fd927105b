"""What the fleet learns from an answer: the IngestEvent published for every answer the merger composes
(graph-ingest). A cache hit publishes none: its answer was learned when it was first given."""

from __future__ import annotations

from moe_core.contracts import Answer, Confidence, IngestEvent, SynthesisInsight, TaskResult
from moe_core.knowledge.learning import knowledge_type


def ingest_event(answer: Answer, lead: TaskResult | None, used: int,
                 insight: SynthesisInsight | None = None) -> IngestEvent | None:
    """None for answers not worth learning from (errors, nothing said, cut off at the deadline).

    lead: the result that carried the answer (the fast path's, or the best one the judge merged);
    used: how many results the judge merged; insight: the judge's insight block, kept only for a synthesis of
    two or more (the original's synthesis_insight: the thinking trace is not an insight)."""
    if answer.error is not None or not answer.content.strip() or answer.finish_reason in ("deadline", "error"):
        return None
    if answer.replay_of:  # a replay (replay rerun) is not learned into the graph
        return None
    confidence: Confidence = lead.confidence if lead is not None else "medium"
    insight = insight if used >= 2 else None
    return IngestEvent(
        **answer.child_fields(),
        question=answer.question,
        answer=answer.content,
        mode=answer.mode,
        knowledge_type=knowledge_type(lead.category if lead else None, lead.kind if lead else "expert",
                                      answer.question),
        source_expert=lead.category if lead else None,
        source_model=lead.model if lead else None,
        confidence=confidence,
        synthesis_insight=insight.summary if insight is not None else None,
        synthesis=insight,
        cache_hit=answer.cache_hit,
    )

