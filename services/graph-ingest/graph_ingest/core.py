"""Pure graph-ingest logic: the extraction prompt and its JSON schema (a factual or a procedural strategy,
chosen by the event's knowledge_type as in the original), sanitising the model's triples, which events to
learn from, the knowledge domain, and what a conflict means."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any, Literal

from pydantic import ValidationError

from moe_core.contracts import IngestEvent
from moe_core.knowledge.graph.model import Triple
from moe_core.knowledge.graph.names import MAX_NAME_CHARS, normalize
from moe_core.knowledge.graph.vocab import DOMAINS, PROCEDURAL_EXTRACTION, RELATION_TYPES, SHARED_TENANT
from moe_core.knowledge.kinds import Kind, strategy
from moe_core.runtime.run_versions import prompt_used

MAX_ANSWER_CHARS = 6000
MAX_ENTITY_CHARS = 80  # what the model may generate; bounded so a small model cannot ramble
ConflictDecision = Literal["write", "reject"]

DOMAIN_HINTS = {
    "medical": "medical", "medical_consult": "medical", "legal": "legal", "legal_advisor": "legal",
    "technical": "technical", "technical_support": "technical", "code_reviewer": "technical",
    "data_analyst": "technical", "math": "math", "reasoning": "math", "science": "science",
}


def relations_for(kind: Kind) -> tuple[str, ...]:
    """The relation types a strategy extracts: every type for facts; requirements, places and causal chains
    for procedures."""
    return PROCEDURAL_EXTRACTION if kind == "procedural" else RELATION_TYPES


def event_strategy(event: IngestEvent) -> Kind:
    return strategy(event.knowledge_type, event.question)


def triples_schema(max_triples: int, kind: Kind = "factual") -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "triples": {
                "type": "array",
                "maxItems": max_triples,
                "items": {
                    "type": "object",
                    "properties": {
                        "subject": {"type": "string", "minLength": 1, "maxLength": MAX_ENTITY_CHARS},
                        "relation": {"type": "string", "enum": list(relations_for(kind))},
                        "object": {"type": "string", "minLength": 1, "maxLength": MAX_ENTITY_CHARS},
                        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                    },
                    "required": ["subject", "relation", "object", "confidence"],
                },
            }
        },
        "required": ["triples"],
    }


_JSON = 'JSON only: {"triples": [{"subject": "...", "relation": "...", "object": "...", "confidence": 0.9}]}'


def extraction_messages(event: IngestEvent, max_triples: int, kind: Kind | None = None) -> list[dict[str, str]]:
    """The extraction call: factual triples (entities, measurements, definitions), or, for procedural
    knowledge, requirement chains (an action REQUIRES a document, condition or step; is PERFORMED_AT a
    place; causes or depends on another)."""
    kind = kind or event_strategy(event)
    if kind == "procedural":
        system = (  # the relations named once, each with its use (issue 52: 81 -> 56 words)
            f"You extract at most {max_triples} procedural requirements the answer states. Subject: a short action "
            "(e.g. 'Renew passport'); object: what it requires (a document, a condition, an earlier step), where it "
            "is performed, or what it causes. Relations: REQUIRES (prerequisites), PERFORMED_AT (places), "
            "CAUSES, DEPENDS_ON, PART_OF, PRODUCES (causal chains, steps). " + _JSON
        )
    else:
        system = (  # short: every answer's extraction pays it (issue 52: 69 -> 50 words)
            f"You extract at most {max_triples} factual triples the answer states. Subject, object: short entity "
            "names, not sentences. Relations: " + ", ".join(RELATION_TYPES) + ". " + _JSON
        )
    prompt_used(f"graph-ingest.extract.{kind}", system)
    user = f"Question: {event.question[:1000]}\n\nAnswer:\n{event.answer[:MAX_ANSWER_CHARS]}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def sanitise(raw: str, max_triples: int, kind: Kind = "factual") -> list[Triple]:
    """Keep the well-formed triples of the model's output: a relation of the strategy, short names, no
    duplicates."""
    allowed = relations_for(kind)
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, TypeError):
        return []
    items = data.get("triples") if isinstance(data, dict) else data
    if not isinstance(items, list):
        return []
    out: list[Triple] = []
    seen: set[tuple[str, str, str]] = set()
    for item in items:
        if not isinstance(item, dict):
            continue
        try:
            triple = Triple(subject=str(item.get("subject", ""))[:MAX_NAME_CHARS],
                            relation=str(item.get("relation", "")),
                            object=str(item.get("object", ""))[:MAX_NAME_CHARS],
                            confidence=_confidence(item.get("confidence")))
        except ValidationError:
            continue
        if triple.relation not in allowed:
            continue
        key = (normalize(triple.subject), triple.relation, normalize(triple.object))
        if key in seen:
            continue
        seen.add(key)
        out.append(triple)
        if len(out) == max_triples:
            break
    return out


def _confidence(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.5
    return min(1.0, max(0.0, number)) if number == number else 0.5  # NaN -> 0.5


def skip_reason(event: IngestEvent, skip_types: Collection[str] = ()) -> str | None:
    """Why an event teaches nothing (None: learn from it); `skip_types`: knowledge types that state no facts."""
    if event.tenant_id == SHARED_TENANT:
        return "the shared tenant is written by the ontology seed only"
    if event.cache_hit:
        return "a cached answer was learned from when it was first given"
    if not event.answer.strip():
        return "empty answer"
    if event.knowledge_type in skip_types:
        return (f"a {event.knowledge_type} answer (a translation, a creative text) states no facts to learn "
                "(MOE_GRAPH_INGEST_SKIP_TYPES)")
    return None


def domain_of(event: IngestEvent) -> str:
    """The knowledge type when it names a domain, else the answering expert's domain, else general."""
    for hint in (event.knowledge_type, event.source_expert or ""):
        value = hint.strip().lower()
        domain = value if value in DOMAINS else DOMAIN_HINTS.get(value, "general")
        if domain != "general":
            return domain
    return "general"


def conflict_decision(conflicts: list[dict[str, Any]]) -> ConflictDecision:
    """A contradiction of curated or user-verified knowledge is refused; one of other extracted
    knowledge is written and left to the linter, which keeps the more trusted side."""
    if any(c.get("source") == "ontology" or c.get("verified") for c in conflicts):
        return "reject"
    return "write"
