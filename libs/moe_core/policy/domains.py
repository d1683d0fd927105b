"""The knowledge domains a change touches, resolved by the server (never taken from the importer's labels):
an entity the tenant's graph or the base ontology knows has that entity's domain; otherwise the words of its
name and type (policy/domain-keywords.yaml) decide; a relation has its type's domain and its entities'. An
item neither resolves is unresolved: only then does its label count (policy/opa/knowledge.rego), and it can
only add approvals.

One resolver for every writer that asks the policy: the control plane (knowledge imports, memory ingest) and
graph-ingest (a learned triple, `resolve_triple`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from moe_core.knowledge.graph import GraphDB, visible_tenants
from moe_core.knowledge.graph.bundles import Bundle
from moe_core.knowledge.graph.model import Triple
from moe_core.knowledge.graph.names import fold, normalize

NO_EVIDENCE = frozenset({"general"})  # a graph entity filed under "general" says nothing about its domain
KNOWN_DOMAINS = """
MATCH (e:Entity) WHERE e.tenant IN $tenants AND (e.key IN $keys OR any(k IN e.alias_keys WHERE k IN $keys))
RETURN e.key AS key, e.alias_keys AS aliases, e.domain AS domain
"""
_WORD = re.compile(r"[a-z0-9]+")


class DomainWords(BaseModel):
    model_config = ConfigDict(extra="forbid")

    relations: list[str] = Field(default_factory=list)
    words: list[str] = Field(default_factory=list)


class Keywords(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=1)
    domains: dict[str, DomainWords]

    def of_words(self, text: str) -> set[str]:
        """The domains whose words the text uses, anywhere in it (not only within a name's length)."""
        words = {w for w in _WORD.findall(fold(text))}
        words |= {w[:-1] for w in words if len(w) > 3 and w.endswith("s")}
        return {d for d, rule in self.domains.items() if words & {w.lower() for w in rule.words}}

    def of_relation(self, relation: str) -> set[str]:
        return {d for d, rule in self.domains.items() if relation in rule.relations}


class KeywordsError(ValueError):
    pass


def load_keywords(path: Path) -> Keywords:
    try:
        return Keywords.model_validate(yaml.safe_load(path.read_text()))
    except OSError as exc:
        raise KeywordsError(f"cannot read the domain keywords {path}: {exc.strerror}") from None
    except (yaml.YAMLError, ValidationError) as exc:
        raise KeywordsError(f"the domain keywords {path} are not valid: {exc}") from None


@dataclass(frozen=True)
class Resolution:
    resolved: list[str]  # the domains the server found
    unresolved_labels: list[str]  # the labels of the items it could not resolve
    unresolved: list[str]  # those items (entity names, relation titles)

    def as_input(self) -> dict[str, list[str]]:
        return {"resolved": self.resolved, "unresolved_labels": self.unresolved_labels}


async def graph_domains(db: GraphDB, tenant: str, keys: set[str]) -> dict[str, set[str]]:
    """key -> the domains the graph (the tenant's and the base ontology) files entities of that key or alias in."""
    if not keys:
        return {}
    rows = await db.read(KNOWN_DOMAINS, tenants=visible_tenants(tenant), keys=sorted(keys))
    found: dict[str, set[str]] = {}
    for row in rows:
        domain = row["domain"]
        if not domain or domain in NO_EVIDENCE:
            continue
        for key in {row["key"], *(row["aliases"] or [])} & keys:
            found.setdefault(key, set()).add(domain)
    return found


async def resolve_bundle(db: GraphDB, tenant: str, bundle: Bundle, words: Keywords) -> Resolution:
    types = {normalize(e.type) for e in bundle.entities if e.type != "Concept"}
    known = await graph_domains(db, tenant, {normalize(e.name) for e in bundle.entities} | types)
    resolved: set[str] = set()
    labels: set[str] = set()
    unresolved: list[str] = []
    of_entity: dict[str, set[str]] = {}
    for entity in bundle.entities:
        key = normalize(entity.name)
        found = known.get(key, set()) | words.of_words(entity.name) | words.of_words(entity.type)
        if entity.type != "Concept":
            found |= known.get(normalize(entity.type), set())
        of_entity[key] = found
        _count(found, entity.domain, entity.name, resolved, labels, unresolved)
    for rel in bundle.relations:
        found = words.of_relation(rel.relation) | of_entity.get(normalize(rel.subject), set()) | of_entity.get(
            normalize(rel.object), set())
        _count(found, rel.domain, rel.title(), resolved, labels, unresolved)
    return Resolution(sorted(resolved), sorted(labels), unresolved)


async def resolve_triple(db: GraphDB, tenant: str, triple: Triple, words: Keywords) -> list[str]:
    """The domains a learned triple touches: its relation type's, and each endpoint's (the domain the tenant's
    graph or the base ontology files an entity of that name or alias in, and the words of the name)."""
    known = await graph_domains(db, tenant, {normalize(triple.subject), normalize(triple.object)})
    found = words.of_relation(triple.relation)
    for name in (triple.subject, triple.object):
        found |= known.get(normalize(name), set()) | words.of_words(name)
    return sorted(found)


def resolve_text(text: str, words: Keywords) -> list[str]:
    """The domains a text to learn from touches (its words; memory ingest)."""
    return sorted(words.of_words(text))


def _count(found: set[str], label: str, name: str, resolved: set[str], labels: set[str],
           unresolved: list[str]) -> None:
    if found:
        resolved |= found
    else:
        labels.add(label)
        unresolved.append(name)
