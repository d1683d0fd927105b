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


# What a classification holds (the JSON's fields say the rest; issue 52: 64 -> 38 words besides the class list).
_ASKED = ("a concrete entity or concept (is_entity), not a generic word? Its canonical name, parent class, domain, "
          "up to 3 aliases.")
_ONE = '{"is_entity": true, "name": "...", "parent": "...", "domain": "...", "aliases": ["..."], "confidence": 0.8}'


def context_window(term: str, context: str, words: int) -> str:
    """The words of `context` around the first mention of `term` (`words` either side, '...' where cut): what the
    classification needs of the question, not all of it. A context that does not mention the term is cut to its
    first 2 x `words` words."""
    return terms_window([term], context, words)


def terms_window(terms: list[str], context: str, words: int) -> str:
    """`context_window` of several terms: `words` either side of each term mentioned, overlapping windows joined,
    '...' between windows and where cut (issue 52: not the span from the first term to the last, which was most of a
    question whose terms are far apart)."""
    tokens = context.split()
    folded = [t.lower().strip(".,;:!?'\"()") for t in tokens]
    spans = []
    for term in terms:
        want = [w.lower().strip(".,;:!?'\"()") for w in term.split()]
        at = next((i for i in range(len(tokens)) if folded[i:i + len(want)] == want), None)
        if at is not None:
            spans.append((max(at - words, 0), min(at + len(want) + words, len(tokens))))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans) or [(0, min(2 * words, len(tokens)))]:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    text = " ... ".join(" ".join(tokens[start:end]) for start, end in merged)
    return ("... " if merged[0][0] > 0 else "") + text + (" ..." if merged[-1][1] < len(tokens) else "")


def classification_messages(term: str, context: str, classes: list[str], context_words: int = 6
                            ) -> list[dict[str, str]]:
    system = (  # short: every unknown term pays it (issue 52; the class list is most of it)
        f"You classify a term for a knowledge graph: {_ASKED} Classes: " + ", ".join(classes) + ". "
        f"JSON only: {_ONE}"
    )
    prompt_used("gap-healer.classify", system)
    user = f"Term: {term}\nSeen in the question: {context_window(term, context[:1000], context_words)}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def batch_schema(terms: list[str], classes: list[str]) -> dict[str, Any]:
    """One classification per term, each under its term as written: nothing else, none missing."""
    item = classification_schema(classes)
    return {"type": "object", "properties": {t: item for t in terms}, "required": list(terms),
            "additionalProperties": False}


def batch_messages(questions: list[tuple[list[str], str]], classes: list[str], context_words: int = 6
                   ) -> list[dict[str, str]]:
    """The terms of one or more questions in one call (issue 52: the class list, the bulk of the prompt, once):
    each question's terms, then the words of the question around them (gap_healer.batch)."""
    system = (
        f"You classify each term for a knowledge graph: {_ASKED} Classes: " + ", ".join(classes) + ". "
        f'JSON only, keyed by each term as written: {{"<term>": {_ONE}}}'
    )
    prompt_used("gap-healer.classify.batch", system)
    user = "\n".join("Terms:\n" + "\n".join(f"- {t}" for t in terms) + "\nSeen in the question: "
                     + terms_window(terms, context[:1000], context_words) for terms, context in questions)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def split_batch(raw: str, terms: list[str]) -> dict[str, str]:
    """Each term's own classification (its JSON, for `parse_classification`) from a batched answer, taken only
    where it cannot belong to another term: under its own key (as written or folded, and no second key folding to
    it), and not naming another term of the batch. A lone classification (not keyed) counts for the one term it
    names. A term left out is not answered: its gap asks again."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, TypeError):
        return {}
    if not isinstance(data, dict):
        return {}
    folded = {normalize(t): t for t in terms}
    if "is_entity" in data:  # one classification, not keyed by a term
        named = folded.get(normalize(str(data.get("name") or "")))
        return {named: json.dumps(data)} if named is not None else {}
    keyed: dict[str, list[Any]] = {}
    for key, entry in data.items():
        term = folded.get(normalize(str(key)))
        if term is not None:
            keyed.setdefault(term, []).append(entry)
    out = {}
    for term, entries in keyed.items():
        entry = entries[0]
        if len(entries) != 1 or not isinstance(entry, dict):  # two keys for one term, or no classification
            continue
        named = folded.get(normalize(str(entry.get("name") or "")))
        if named is not None and named != term:  # the name of another term of the batch: mixed up
            continue
        out[term] = json.dumps(entry)
    return out


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
