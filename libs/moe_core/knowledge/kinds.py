"""Factual or procedural: the two kinds of knowledge the original tells apart on `moe.ingest` (its
`knowledge_type`): factual knowledge is entities, measurements and definitions; procedural knowledge is
what an action requires, where it happens, and causal chains. The merger tags an answer, graph-ingest
chooses its extraction strategy by the tag, and graph-rag adds the procedural requirements block for a
procedural question. Decided without a model call, from the question's wording (English)."""

from __future__ import annotations

import re
from typing import Literal

Kind = Literal["factual", "procedural"]
KINDS: tuple[Kind, ...] = ("factual", "procedural")

_PROCEDURAL = re.compile(
    r"\b(how (do|can|should|would) (i|we|you|one)|how to|steps?\b|step[- ]by[- ]step|procedures?|process (for|of|to)"
    r"|what (do|does|would) (i|we|you|one) need|what is (needed|required)|requirements?\b|prerequisites?"
    r"|where (do|can|should) (i|we|you|one)|in order to|apply for|register (for|a|an|my)"
    r"|what happens (if|when|after))",
    re.IGNORECASE)


def question_kind(question: str) -> Kind:
    """procedural when the question asks how to do something, what it needs or where it happens."""
    return "procedural" if _PROCEDURAL.search(question or "") else "factual"


def strategy(knowledge_type: str, question: str) -> Kind:
    """The extraction strategy of an ingest: its knowledge_type when that is `factual` or `procedural`;
    for a domain label (`medical`, `general`, ... as older producers and /v1/memory/ingest send), the
    question decides."""
    kind = knowledge_type.strip().lower()
    if kind == "procedural":
        return "procedural"
    return "factual" if kind == "factual" else question_kind(question)
