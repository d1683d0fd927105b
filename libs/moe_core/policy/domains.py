"""The knowledge domains a change touches, resolved by the server (never taken from the importer's labels):
an entity the tenant's graph or the base ontology knows (by its name or any of its aliases) has that entity's
domain; otherwise the words of its name, type and aliases decide: policy/domain-keywords.yaml and every name and
alias of the base ontology (moe_core.policy.ontology_words); a relation has its type's domain and its entities'.
Names and texts are folded first (moe_core.runtime.normalise: NFKC, invisible characters removed, look-alike
letters per UTS #39), so `Ibuprofen` written with a Cyrillic I (U+0406) is Ibuprofen. An item nothing
resolves is unresolved: its label only adds approvals, and the bundle needs at least the default number
(policy/opa/knowledge.rego).

One resolver for every writer that asks the policy: the control plane (knowledge imports, memory ingest) and
graph-ingest (a learned triple, `resolve_triple`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from moe_core.knowledge.graph.bundles import Bundle, BundleEntity
from moe_core.knowledge.graph.model import Triple
from moe_core.knowledge.graph.names import fold, normalize
from moe_core.knowledge.graph.vocab import DOMAINS, visible_tenants
from moe_core.policy.ontology_words import base_ontology, words_of
from moe_core.runtime.normalise import fold as fold_confusables

if TYPE_CHECKING:
    from moe_core.knowledge.graph.driver import GraphDB

NO_EVIDENCE = frozenset({"general"})  # a graph entity filed under "general" says nothing about its domain
# The visible entities named by one of the keys, by name or alias (through their alias nodes,
# moe_core.knowledge.graph.alias_nodes: index seeks, not a pass over every entity the tenant sees)
KNOWN_DOMAINS = """
CALL () {
  UNWIND $keys AS key
  MATCH (e:Entity {key: key}) WHERE e.tenant IN $tenants
  RETURN e
  UNION
  UNWIND $keys AS key
  MATCH (a:AliasKey {key: key})-[:ALIAS_OF]->(e:Entity) WHERE a.tenant IN $tenants AND e.tenant IN $tenants
  RETURN e
}
RETURN e.key AS key, e.alias_keys AS aliases, e.domain AS domain
"""


def unconfused(text: str) -> str:
    """The text with look-alike letters and invisible characters folded (ASCII text is left as it is)."""
    return text if text.isascii() else fold_confusables(text).text


def key_of(name: str) -> str:
    """A name's key as the resolver compares it: folded for look-alikes, then normalised like an entity key."""
    return normalize(unconfused(name))


def keys_of(name: str) -> set[str]:
    """The keys a name may be known by: as written and folded (an entity may have a non-Latin name of its own)."""
    return {k for k in (normalize(name), key_of(name)) if k}


class DomainWords(BaseModel):
    model_config = ConfigDict(extra="forbid")

    relations: list[str] = Field(default_factory=list)
    words: list[str] = Field(default_factory=list)
    # A protected domain's changes are held for review (learned triples, memory text, documents) and need
    # `approvers` distinct principals (four-eyes: 2 when not given); policy/opa/domains.rego reads both from the
    # decision's input (`domain_rules`), so an operator adds or removes one here without editing Rego.
    protected: bool = False
    approvers: int | None = Field(default=None, ge=0, le=9)


class Keywords(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=1)
    domains: dict[str, DomainWords]

    def of_words(self, text: str) -> set[str]:
        """The domains whose words, or whose names in the base ontology, the text uses anywhere in it (folded
        for look-alikes first; a final "s" dropped)."""
        listed = words_of(fold(unconfused(text)))
        singular = [w[:-1] if len(w) > 3 and w.endswith("s") else w for w in listed]
        words = set(listed) | set(singular)
        found = {d for d, rule in self.domains.items() if words & {w.lower() for w in rule.words}}
        phrases = base_ontology()
        return found | phrases.of_words(listed) | phrases.of_words(singular)

    def of_relation(self, relation: str) -> set[str]:
        return {d for d, rule in self.domains.items() if relation in rule.relations}

    def rules(self) -> dict[str, dict[str, Any]]:
        """Each domain's rule as the policies read it (input.domain_rules, policy/opa/domains.rego): a domain
        not in it counts as protected there, so a list that fails to arrive never lowers the approvals. Every
        domain of the graph's vocabulary is described (one this file does not list: not protected)."""
        listed = {
            d: {"protected": r.protected} | ({} if r.approvers is None else {"approvers": r.approvers})
            for d, r in self.domains.items()
        }
        return {d: {"protected": False} for d in DOMAINS} | listed


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
    return domains_by_key(await db.read(KNOWN_DOMAINS, tenants=visible_tenants(tenant), keys=sorted(keys)), keys)


def domains_by_key(rows: list[dict[str, Any]], keys: set[str]) -> dict[str, set[str]]:
    """graph_domains from KNOWN_DOMAINS' rows (key, aliases, domain), wherever they were read."""
    found: dict[str, set[str]] = {}
    for row in rows:
        domain = row["domain"]
        if not domain or domain in NO_EVIDENCE:
            continue
        for key in {row["key"], *(row["aliases"] or [])} & keys:
            found.setdefault(key, set()).add(domain)
    return found


def _names(entity: BundleEntity) -> list[str]:
    """What an entity is called: its name, its aliases, and its type unless it has none."""
    return [entity.name, *entity.aliases, *([entity.type] if entity.type != "Concept" else [])]


async def resolve_bundle(db: GraphDB, tenant: str, bundle: Bundle, words: Keywords) -> Resolution:
    every = {k for e in bundle.entities for name in _names(e) for k in keys_of(name)}
    known = await graph_domains(db, tenant, every)
    resolved: set[str] = set()
    labels: set[str] = set()
    unresolved: list[str] = []
    of_entity: dict[str, set[str]] = {}
    for entity in bundle.entities:
        found: set[str] = set()
        for name in _names(entity):
            found |= words.of_words(name)
            for key in keys_of(name):
                found |= known.get(key, set())
        of_entity[normalize(entity.name)] = found
        _count(found, entity.domain, entity.name, resolved, labels, unresolved)
    for rel in bundle.relations:
        found = (
            words.of_relation(rel.relation)
            | of_entity.get(normalize(rel.subject), set())
            | of_entity.get(normalize(rel.object), set())
        )
        _count(found, rel.domain, rel.title(), resolved, labels, unresolved)
    return Resolution(sorted(resolved), sorted(labels), unresolved)


async def resolve_triple(db: GraphDB, tenant: str, triple: Triple, words: Keywords) -> list[str]:
    """The domains a learned triple touches: its relation type's, and each endpoint's (the domain the tenant's
    graph or the base ontology files an entity of that name or alias in, and the words of the name)."""
    [found] = await resolve_triples(db, tenant, [triple], words)
    return found


async def resolve_triples(db: GraphDB, tenant: str, triples: list[Triple], words: Keywords) -> list[list[str]]:
    """resolve_triple for each of `triples`, with one query to the graph for all their names."""
    return triple_domains(triples, await graph_domains(db, tenant, triple_keys(triples)), words)


def triple_keys(triples: list[Triple]) -> set[str]:
    """The keys resolve_triples asks the graph about: each endpoint's (moe_core.knowledge.graph.plan_read asks them in
    graph-ingest's one read)."""
    return {k for t in triples for n in (t.subject, t.object) for k in keys_of(n)}


def triple_domains(triples: list[Triple], known: dict[str, set[str]], words: Keywords) -> list[list[str]]:
    """resolve_triples with the graph's answer (graph_domains for triple_keys) already read."""
    out = []
    for triple in triples:
        found = words.of_relation(triple.relation)
        for name in (triple.subject, triple.object):
            found |= words.of_words(name)
            for key in keys_of(name):
                found |= known.get(key, set())
        out.append(sorted(found))
    return out


def resolve_text(text: str, words: Keywords) -> list[str]:
    """The domains a text to learn from touches (its words; memory ingest)."""
    return sorted(words.of_words(text))


def _count(found: set[str], label: str, name: str, resolved: set[str], labels: set[str], unresolved: list[str]) -> None:
    if found:
        resolved |= found
    else:
        labels.add(label)
        unresolved.append(name)
