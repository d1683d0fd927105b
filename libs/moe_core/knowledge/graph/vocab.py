"""The closed vocabulary of the knowledge graph: relation types, sources, domains, tenants.

Relation types are data, never Cypher: every relation is stored as `(:Entity)-[:REL {type: ...}]->(:Entity)`
with the type as a property, so no statement ever needs a relationship type built from text.
"""

from __future__ import annotations

from typing import Literal

# Every relation type the graph accepts. Anything else (from an LLM, a client, a file) is refused.
RELATION_TYPES: tuple[str, ...] = (
    "IS_A",
    "PART_OF",
    "TREATS",
    "CAUSES",
    "PREVENTS",
    "INTERACTS_WITH",
    "CONTRAINDICATES",
    "SYMPTOM_OF",
    "DIAGNOSES",
    "DEFINES",
    "REGULATES",
    "USES",
    "IMPLEMENTS",
    "DEPENDS_ON",
    "EXTENDS",
    "RELATED_TO",
    "AFFECTS",
    "PRODUCES",
    "MEASURES",
    "REQUIRES",
    "PERFORMED_AT",
)
RELATION_SET = frozenset(RELATION_TYPES)

# Procedural requirement chains: an action requires a condition / document / step, or a location.
PROCEDURAL_TYPES: tuple[str, ...] = ("REQUIRES", "PERFORMED_AT")

# The relations a procedural extraction uses: requirements, places, and causal or part-of chains.
PROCEDURAL_EXTRACTION: tuple[str, ...] = ("REQUIRES", "PERFORMED_AT", "CAUSES", "DEPENDS_ON", "PART_OF", "PRODUCES")

# Pairs that cannot both hold between the same subject and object (checked in both directions).
CONFLICTS: tuple[tuple[str, str], ...] = (("TREATS", "CAUSES"), ("TREATS", "CONTRAINDICATES"))

# Relations whose direction carries no meaning.
SYMMETRIC_TYPES = frozenset({"INTERACTS_WITH", "RELATED_TO"})

Source = Literal["ontology", "extracted", "gap_healer", "imported"]
SOURCES: tuple[Source, ...] = ("ontology", "extracted", "gap_healer", "imported")

DOMAINS: tuple[str, ...] = ("medical", "legal", "technical", "math", "science", "general")

# Tenant of the base ontology: every tenant sees it; no API key can act as it.
SHARED_TENANT = "__shared__"
# A lint request with this tenant lints every tenant (operators only).
ALL_TENANTS = "*"


def conflicting_types(relation: str) -> list[str]:
    """Relation types that contradict `relation` between the same two entities."""
    out = [b for a, b in CONFLICTS if a == relation] + [a for a, b in CONFLICTS if b == relation]
    return sorted(set(out))


def conflict_pairs() -> list[list[str]]:
    """Every ordered conflicting pair, as a Cypher list parameter."""
    return [[a, b] for a, b in CONFLICTS] + [[b, a] for a, b in CONFLICTS]


def visible_tenants(tenant: str) -> list[str]:
    """A tenant sees its own knowledge and the shared ontology, nothing else."""
    return [tenant] if tenant == SHARED_TENANT else [tenant, SHARED_TENANT]
