"""What the fleet learns from an answer: the domain an answer's knowledge is tagged with (`knowledge_type` on
`ingest`). The merger publishes the ingest event of every answer it composes (merger.learning); a cache hit
publishes none (it was learned when it was first given)."""

from __future__ import annotations

import re

from moe_core.knowledge.kinds import question_kind

KNOWLEDGE_TYPES = {
    "medical_consult": "medical", "legal_advisor": "legal", "code_reviewer": "technical",
    "technical_support": "technical", "math": "math", "science": "science", "data_analyst": "data",
    "reasoning": "reasoning", "translation": "language", "creative_writer": "creative", "vision": "vision",
    "knowledge_graph": "general", "research": "general", "general": "general",
}


# A question that asks for a translation (the router may send it to `general`: its answer is still a translation,
# which graph-ingest does not learn from, MOE_GRAPH_INGEST_SKIP_TYPES; issue 52).
_TRANSLATE = re.compile(r"\s*(please\s+|(can|could|would) you( please)?\s+)?(translate|übersetze)\b", re.IGNORECASE)


def knowledge_type(category: str | None, kind: str = "expert", question: str = "") -> str:
    """`procedural` for an answer to a procedural question (the original's tag: graph-ingest extracts
    requirement chains from it; source_expert still names the domain), `language` for a translation, else the
    domain of the category."""
    if kind == "tool":
        return "precision"
    if _TRANSLATE.match(question or ""):  # whichever expert the router chose: a translation states no facts
        return "language"
    if question_kind(question) == "procedural":
        return "procedural"
    return KNOWLEDGE_TYPES.get(category or "general", "general")
