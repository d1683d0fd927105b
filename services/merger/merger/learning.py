"""What the fleet learns from an answer: the IngestEvent published for every answer (graph-ingest)."""

from __future__ import annotations

from moe_core.contracts import Answer, Confidence, IngestEvent, SynthesisInsight, TaskResult
from moe_core.knowledge import question_kind

KNOWLEDGE_TYPES = {
    "medical_consult": "medical", "legal_advisor": "legal", "code_reviewer": "technical",
    "technical_support": "technical", "math": "math", "science": "science", "data_analyst": "data",
    "reasoning": "reasoning", "translation": "language", "creative_writer": "creative", "vision": "vision",
    "knowledge_graph": "general", "research": "general", "general": "general",
}


def knowledge_type(category: str | None, kind: str = "expert", question: str = "") -> str:
    """`procedural` for an answer to a procedural question (the original's tag: graph-ingest extracts
    requirement chains from it; source_expert still names the domain), else the domain of the category."""
    if kind == "tool":
        return "precision"
    if question_kind(question) == "procedural":
        return "procedural"
    return KNOWLEDGE_TYPES.get(category or "general", "general")


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


def cache_hit_event(answer: Answer) -> IngestEvent | None:
    """A semantic-cache hit (published by the planner): learned again, marked cache_hit."""
    if not answer.cache_hit or answer.error is not None or not answer.content.strip() or answer.replay_of:
        return None
    first = answer.models_used[0] if answer.models_used else None
    return IngestEvent(
        **answer.child_fields(),
        question=answer.question,
        answer=answer.content,
        mode=answer.mode,
        knowledge_type=knowledge_type(first.category if first else None, question=answer.question),
        source_expert=first.category if first else None,
        source_model=first.model if first else None,
        confidence="high",
        cache_hit=True,
    )
