"""The base ontology: loaded from ontology.yaml, validated against the closed vocabulary, and seeded
idempotently (MERGE on stable ids) into the shared tenant."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from moe_core.knowledge.graph.names import clean_name, entity_uid, normalize, relation_id
from moe_core.knowledge.graph.vocab import DOMAINS, RELATION_SET, SHARED_TENANT

if TYPE_CHECKING:
    from moe_core.knowledge.graph.driver import GraphDB

ONTOLOGY_FILE = Path(__file__).with_name("ontology.yaml")
ONTOLOGY_CONFIDENCE = 1.0


class OntologyError(ValueError):
    """The ontology file breaks a rule (unknown relation type, missing alias, dangling name, ...)."""


@dataclass(frozen=True)
class SeedEntity:
    uid: str
    name: str
    key: str
    parent: str | None
    domain: str
    aliases: list[str]
    alias_keys: list[str]
    is_class: bool


@dataclass(frozen=True)
class SeedRelation:
    id: str
    subject: str  # entity uid
    type: str
    object: str  # entity uid
    domain: str


@dataclass(frozen=True)
class Ontology:
    entities: list[SeedEntity]
    relations: list[SeedRelation]
    digest: str


def load(path: Path = ONTOLOGY_FILE) -> Ontology:
    raw = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    if not isinstance(raw, dict):
        raise OntologyError("the ontology file must be a mapping of domains")
    entities: dict[str, SeedEntity] = {}
    triples: list[tuple[str, str, str, str]] = []
    for domain, section in raw.items():
        if domain == "version":
            continue
        if domain not in DOMAINS:
            raise OntologyError(f"unknown domain {domain!r}")
        for row in section.get("classes", []):
            _add(entities, row, domain, is_class=True)
        for row in section.get("entities", []):
            _add(entities, row, domain, is_class=False)
        triples += [(str(s), str(t), str(o), domain) for s, t, o in section.get("relations", [])]
    _check_names(entities)
    relations = [_is_a(entities, e) for e in entities.values() if e.parent is not None]
    relations += [_relation(entities, s, t, o, d) for s, t, o, d in triples]
    if len({r.id for r in relations}) != len(relations):
        raise OntologyError("a relation is listed twice")
    digest = hashlib.sha256(
        json.dumps([[asdict(e) for e in entities.values()], [asdict(r) for r in relations]], sort_keys=True).encode()
    ).hexdigest()
    return Ontology(list(entities.values()), relations, digest)


def _add(entities: dict[str, SeedEntity], row: Any, domain: str, *, is_class: bool) -> None:
    if not (isinstance(row, list) and len(row) == 3 and isinstance(row[2], list)):
        raise OntologyError(f"entity rows are [name, parent, [aliases]]: {row!r}")
    name, parent, aliases = clean_name(str(row[0])), row[1], [clean_name(str(a)) for a in row[2]]
    if not aliases:
        raise OntologyError(f"{name} has no alias")
    if name in entities:
        raise OntologyError(f"{name} is listed twice")
    key = normalize(name)
    alias_keys = sorted({normalize(a) for a in aliases} - {key})
    entities[name] = SeedEntity(
        entity_uid(SHARED_TENANT, key),
        name,
        key,
        None if parent is None else str(parent),
        domain,
        aliases,
        alias_keys,
        is_class,
    )


def _check_names(entities: dict[str, SeedEntity]) -> None:
    owner: dict[str, str] = {}
    for e in entities.values():
        for k in [e.key, *e.alias_keys]:
            if k in owner and owner[k] != e.name:
                raise OntologyError(f"name or alias {k!r} belongs to both {owner[k]} and {e.name}")
            owner[k] = e.name
        if e.parent is not None and (e.parent not in entities or not entities[e.parent].is_class):
            raise OntologyError(f"{e.name}: parent {e.parent!r} is not a class")


def _is_a(entities: dict[str, SeedEntity], e: SeedEntity) -> SeedRelation:
    parent = entities[e.parent or ""]
    return SeedRelation(relation_id(SHARED_TENANT, e.uid, "IS_A", parent.uid), e.uid, "IS_A", parent.uid, e.domain)


def _relation(entities: dict[str, SeedEntity], s: str, t: str, o: str, domain: str) -> SeedRelation:
    if t not in RELATION_SET:
        raise OntologyError(f"unknown relation type {t!r} in [{s}, {t}, {o}]")
    if s not in entities or o not in entities:
        raise OntologyError(f"[{s}, {t}, {o}] names an entity that is not listed")
    if s == o:
        raise OntologyError(f"[{s}, {t}, {o}] is a loop")
    a, b = entities[s], entities[o]
    return SeedRelation(relation_id(SHARED_TENANT, a.uid, t, b.uid), a.uid, t, b.uid, domain)


SEEDED = "MATCH (s:OntologySeed {digest: $digest}) WHERE s.seeded_at IS NOT NULL RETURN s.digest AS digest"

# Taken first in the seeding transaction: the unique constraint on the digest (graph.schema) makes a concurrent
# MERGE of the same digest wait for this transaction's end; the node stays unmarked (no seeded_at) until
# MARK_SEEDED, in the same transaction, so a rolled-back seeding leaves nothing behind.
CLAIM_SEED = """
MERGE (s:OntologySeed {digest: $digest})
ON CREATE SET s.claimed_at = $now
RETURN s.seeded_at AS seeded_at
"""

# the entities, each with its alias nodes (alias_nodes.SYNC_ALIASES)
SEED_ENTITIES = """
UNWIND $entities AS row
MERGE (e:Entity {uid: row.uid})
ON CREATE SET e.created_at = $now
SET e.name = row.name, e.key = row.key, e.tenant = $tenant, e.type = coalesce(row.parent, 'Class'),
    e.domain = row.domain, e.aliases = row.aliases, e.alias_keys = row.alias_keys, e.is_class = row.is_class,
    e.source = 'ontology'
WITH e
CALL (e) {
  MATCH (e)<-[:ALIAS_OF]-(old:AliasKey)
  WHERE NOT old.key IN coalesce(e.alias_keys, []) OR old.tenant <> e.tenant
  DETACH DELETE old
}
CALL (e) {
  UNWIND coalesce(e.alias_keys, []) AS k
  MERGE (a:AliasKey {uid: e.uid, key: k})
  SET a.tenant = e.tenant
  MERGE (a)-[:ALIAS_OF]->(e)
}
MERGE (v:GraphVersion {tenant: e.tenant})
SET v.lex = coalesce(v.lex, 0) + 1, v.epoch = coalesce(v.epoch, randomUUID())
SET e.lex = v.lex
"""

SEED_RELATIONS = """
UNWIND $relations AS rel
MATCH (a:Entity {uid: rel.subject}), (b:Entity {uid: rel.object})
MERGE (a)-[r:REL {id: rel.id}]->(b)
ON CREATE SET r.created_at = $now, r.asserted_at = $now, r.version = 1, r.assertions = 1, r.asserted_by = [],
              r.verified = false, r.flagged = false
SET r.type = rel.type, r.tenant = $tenant, r.source = 'ontology', r.confidence = $confidence,
    r.domain = rel.domain, r.trust = CASE WHEN r.flagged THEN 0.0 ELSE $confidence END
"""

MARK_SEEDED = """
MERGE (s:OntologySeed {digest: $digest})
SET s.seeded_at = $now, s.entities = $n_entities, s.relations = $n_relations
WITH s
MERGE (v:GraphVersion {tenant: $tenant})
SET v.n = coalesce(v.n, 0) + 1
"""


async def seed(db: GraphDB, ontology: Ontology | None = None) -> bool:
    """Write the ontology unless this exact version was seeded before. Returns True when it wrote.

    Several graph services start at once (graph-rag, graph-ingest, gap-healer) and each calls this: one writes.
    The transaction first claims the version's OntologySeed node (MERGE under the unique constraint on its
    digest, so a second claimer waits until the first commits or rolls back), then writes only if that node was
    never marked seeded. Before this, all three saw "not seeded" and wrote the same entities at once, blocking
    each other's writes for up to 21 s (`python -m bench.neo4j_queries`, issue 52)."""
    from moe_core.knowledge.graph.driver import tx_data  # the driver (neo4j) is loaded by graph services only

    onto = ontology or load()
    if await db.read(SEEDED, digest=onto.digest):
        return False
    now = time.time()
    entities = [asdict(e) for e in onto.entities]
    relations = [asdict(r) for r in onto.relations]

    async def work(tx: Any) -> bool:
        [claim] = await tx_data(tx, CLAIM_SEED, digest=onto.digest, now=now)
        if claim["seeded_at"] is not None:
            return False  # another service seeded this version while this one waited for the claim
        await tx_data(tx, SEED_ENTITIES, entities=entities, tenant=SHARED_TENANT, now=now)
        await tx_data(
            tx, SEED_RELATIONS, relations=relations, tenant=SHARED_TENANT, now=now, confidence=ONTOLOGY_CONFIDENCE
        )
        await tx_data(
            tx,
            MARK_SEEDED,
            digest=onto.digest,
            now=now,
            n_entities=len(entities),
            n_relations=len(relations),
            tenant=SHARED_TENANT,
        )
        return True

    return await db.transaction(work)
