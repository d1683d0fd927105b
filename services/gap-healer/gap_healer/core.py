"""Pure gap-healer logic: the classification prompt and schema (closed class list), reading the
model's answer, and the lint decisions (which side of a contradiction goes, what has decayed)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from moe_core.knowledge.graph.names import MAX_NAME_CHARS, clean_name, normalize
from moe_core.knowledge.graph.trust import TrustPolicy
from moe_core.knowledge.graph.vocab import DOMAINS
from moe_core.runtime.run_versions import prompt_used

MAX_ALIASES = 3
MAX_GENERATED_NAME = 80


@dataclass(frozen=True)
class Classification:
    name: str
    parent: str
    domain: str
    aliases: list[str]
    confidence: float


def classification_schema(classes: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "is_entity": {"type": "boolean"},
            "name": {"type": "string", "minLength": 1, "maxLength": MAX_GENERATED_NAME},
            "parent": {"type": "string", "enum": classes},
            "domain": {"type": "string", "enum": list(DOMAINS)},
            "aliases": {"type": "array", "maxItems": MAX_ALIASES,
                        "items": {"type": "string", "minLength": 1, "maxLength": MAX_GENERATED_NAME}},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["is_entity", "name", "parent", "domain", "confidence"],
    }


def context_window(term: str, context: str, words: int) -> str:
    """The words of `context` around the first mention of `term` (`words` either side, '...' where cut): what the
    classification needs of the question, not all of it. A context that does not mention the term is cut to its
    first 2 x `words` words."""
    tokens = context.split()
    want = [w.lower().strip(".,;:!?'\"()") for w in term.split()]
    at = next((i for i in range(len(tokens)) if [t.lower().strip(".,;:!?'\"()")
                                                  for t in tokens[i:i + len(want)]] == want), None)
    start, end = (0, 2 * words) if at is None else (max(at - words, 0), at + len(want) + words)
    return ("... " if start > 0 else "") + " ".join(tokens[start:end]) + (" ..." if end < len(tokens) else "")


def classification_messages(term: str, context: str, classes: list[str], context_words: int = 12
                            ) -> list[dict[str, str]]:
    system = (  # short: every unknown term pays it (issue 52)
        "You classify a term for a knowledge graph: is it a concrete entity or concept (not a generic word)? Its "
        "canonical name, its one class (from the list), domain, up to 3 common aliases, confidence 0 to 1. "
        "Classes: " + ", ".join(classes) + ". "
        'JSON only: {"is_entity": true, "name": "...", "parent": "...", "domain": "...", "aliases": ["..."], '
        '"confidence": 0.8}'
    )
    prompt_used("gap-healer.classify", system)
    user = f"Term: {term}\nSeen in the question: {context_window(term, context[:1000], context_words)}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def parse_classification(raw: str, term: str, classes: list[str], min_confidence: float) -> Classification | None:
    """The model's classification if it is usable: an entity, a known class, confident enough."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, TypeError):
        return None
    if not isinstance(data, dict) or data.get("is_entity") is not True:
        return None
    parent, domain = data.get("parent"), data.get("domain")
    if parent not in classes or domain not in DOMAINS:
        return None
    try:
        confidence = float(data.get("confidence", 0))
    except (TypeError, ValueError):
        return None
    if not confidence >= min_confidence:
        return None
    name = clean_name(str(data.get("name") or ""))
    if normalize(name) != normalize(term):  # the model may fix the casing, never rename the term
        name = clean_name(term)
    aliases = [clean_name(str(a))[:MAX_NAME_CHARS] for a in (data.get("aliases") or []) if isinstance(a, str)]
    aliases = [a for a in dict.fromkeys(aliases) if normalize(a) and normalize(a) != normalize(name)][:MAX_ALIASES]
    return Classification(name, str(parent), str(domain), aliases, min(1.0, confidence))


def contradiction_loser(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any] | None:
    """Which of two contradicting relations goes: curated and verified knowledge wins, then the higher
    trust, then the older assertion. None when both are curated ontology (never deleted by lint)."""

    def strength(r: dict[str, Any]) -> tuple[bool, bool, float, float]:
        return (r.get("source") == "ontology", bool(r.get("verified")), float(r.get("trust") or 0.0),
                -float(r.get("created_at") or 0.0))

    loser = min(first, second, key=strength)
    return None if loser.get("source") == "ontology" else loser


def decayed(row: dict[str, Any], policy: TrustPolicy, now: float) -> tuple[bool, float]:
    """(rule applies, current trust) for one relation under the decay rule."""
    trust = policy.trust(confidence=float(row.get("confidence") or 0.0), source=str(row.get("source")),
                         asserted_at=float(row.get("asserted_at") or now), verified=bool(row.get("verified")),
                         now=now)
    rule = policy.decayed(trust=trust, verified=bool(row.get("verified")), assertions=int(row.get("assertions") or 1),
                          source=str(row.get("source")))
    return rule, trust
