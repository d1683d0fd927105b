"""Bundles against the graph: export a tenant's subgraph, diff a bundle against a tenant's graph (nothing
written), and apply the added and changed relations of a diff with source "imported" (idempotent: every
write carries the change set as its origin, so applying twice asserts nothing twice)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from neo4j import AsyncManagedTransaction

from moe_core.knowledge.graph.bundles import Bundle, BundleEntity, BundleRelation, Origin, Selection, seal
from moe_core.knowledge.graph.driver import tx_data
from moe_core.knowledge.graph.model import Provenance
from moe_core.knowledge.graph.names import entity_uid, normalize
from moe_core.knowledge.graph.store import GraphStore
from moe_core.knowledge.graph.vocab import conflicting_types, visible_tenants

IMPORTED: Final = "imported"

EXPORT_RELATIONS = """
MATCH (a:Entity)-[r:REL]->(b:Entity)
WHERE r.tenant = $tenant AND NOT coalesce(r.flagged, false)
  AND ($domain IS NULL OR r.domain = $domain)
  AND ($keys IS NULL OR a.key IN $keys OR b.key IN $keys)
RETURN a {.name, .type, .domain, .aliases} AS a, b {.name, .type, .domain, .aliases} AS b, r.type AS relation,
       r.confidence AS confidence, coalesce(r.domain, 'general') AS domain, r.source AS source,
       coalesce(r.verified, false) AS verified
ORDER BY r.id
LIMIT $limit
"""

EXPORT_ENTITIES = """
MATCH (e:Entity)
WHERE e.tenant = $tenant AND ($domain IS NULL OR e.domain = $domain) AND ($keys IS NULL OR e.key IN $keys)
RETURN e {.name, .type, .domain, .aliases} AS e
ORDER BY e.key
LIMIT $limit
"""

GRAPH_VERSION = """
OPTIONAL MATCH (v:GraphVersion {tenant: $tenant})
RETURN coalesce(v.n, 0) AS n
"""

# Entity resolution for many names at once (store.RESOLVE_ENTITY's order: the tenant's own before the shared,
# then the name before an alias): exact keys through the (tenant, key) index, aliases through their alias nodes
# (graph.alias_nodes).
RESOLVE_KEYS = """
MATCH (e:Entity)
WHERE e.tenant IN $tenants AND e.key IN $keys
RETURN e.key AS key, e.uid AS uid, e.tenant AS tenant, true AS exact
"""

RESOLVE_ALIASES = """
UNWIND $keys AS key
MATCH (a:AliasKey {key: key})-[:ALIAS_OF]->(e:Entity)
WHERE a.tenant IN $tenants AND e.tenant IN $tenants
RETURN DISTINCT key, e.uid AS uid, e.tenant AS tenant, false AS exact
"""

EXISTING = """
UNWIND $rows AS row
OPTIONAL MATCH (:Entity {uid: row.subject})-[r:REL]->(:Entity {uid: row.object})
WHERE r.tenant IN $tenants AND (r.type = row.type OR r.type IN row.conflicting)
RETURN row.i AS i, collect(r {.id, .type, .tenant, .source, .verified, .confidence}) AS found
"""

# the bundle's new entities, each with its alias nodes (alias_nodes.SYNC_ALIASES)
CREATE_ENTITIES = """
UNWIND $rows AS row
MERGE (e:Entity {uid: row.uid})
ON CREATE SET e.name = row.name, e.key = row.key, e.tenant = $tenant, e.type = row.type, e.domain = row.domain,
              e.aliases = row.aliases, e.alias_keys = row.alias_keys, e.is_class = false, e.source = $source,
              e.created_at = $now, e.import_id = $import_id
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


def _best(rows: list[dict[str, Any]], tenant: str) -> dict[str, str]:
    """key -> uid of the best match per key."""
    ranked = sorted(rows, key=lambda r: (r["tenant"] != tenant, not r["exact"]))
    out: dict[str, str] = {}
    for row in ranked:
        out.setdefault(row["key"], row["uid"])
    return out


async def resolve_many(store: GraphStore, tenant: str, keys: list[str]) -> dict[str, str]:
    tenants = visible_tenants(tenant)
    rows = [*await store.db.read(RESOLVE_KEYS, keys=keys, tenants=tenants),
            *await store.db.read(RESOLVE_ALIASES, keys=keys, tenants=tenants)]
    return _best(rows, tenant)


async def resolve_many_in(tx: AsyncManagedTransaction, tenant: str, keys: list[str]) -> dict[str, str]:
    tenants = visible_tenants(tenant)
    rows = [*await tx_data(tx, RESOLVE_KEYS, keys=keys, tenants=tenants),
            *await tx_data(tx, RESOLVE_ALIASES, keys=keys, tenants=tenants)]
    return _best(rows, tenant)


class TooLarge(ValueError):
    """The selection has more relations or entities than one bundle may carry."""


def _entity(row: dict[str, Any]) -> BundleEntity:
    return BundleEntity(name=row["name"], type=row.get("type") or "Concept", domain=row.get("domain") or "general",
                        aliases=list(row.get("aliases") or []))


async def export(store: GraphStore, tenant: str, selection: Selection, exported_by: str,
                 max_relations: int, max_entities: int) -> dict[str, Any]:
    """The tenant's own relations (not flagged) matching the selection, with their end entities."""
    keys = [normalize(n) for n in selection.entities] if selection.entities is not None else None
    db = store.db
    rels = await db.read(EXPORT_RELATIONS, tenant=tenant, domain=selection.domain, keys=keys, limit=max_relations + 1)
    lone = await db.read(EXPORT_ENTITIES, tenant=tenant, domain=selection.domain, keys=keys, limit=max_entities + 1)
    if len(rels) > max_relations:
        raise TooLarge(f"the selection has more than {max_relations} relations; narrow it (domain or entities)")
    entities: dict[str, BundleEntity] = {}
    for row in [*(x for r in rels for x in (r["a"], r["b"])), *(r["e"] for r in lone)]:
        entities.setdefault(normalize(row["name"]), _entity(row))
    if len(entities) > max_entities:
        raise TooLarge(f"the selection has more than {max_entities} entities; narrow it (domain or entities)")
    relations = [BundleRelation(subject=r["a"]["name"], relation=r["relation"], object=r["b"]["name"],
                                confidence=r["confidence"], domain=r["domain"], source=r["source"] or "extracted",
                                verified=r["verified"]) for r in rels]
    version = (await db.read(GRAPH_VERSION, tenant=tenant))[0]["n"]
    origin = Origin(tenant=tenant, exported_at=datetime.now(UTC), exported_by=exported_by, graph_version=version,
                    selection=selection)
    return seal(origin, list(entities.values()), relations)


def _rel(rel: BundleRelation) -> dict[str, Any]:
    return {"subject": rel.subject, "relation": rel.relation, "object": rel.object, "confidence": rel.confidence,
            "domain": rel.domain}


def _is_verified(fact: dict[str, Any]) -> bool:
    return bool(fact.get("verified")) or fact.get("source") == "ontology"


@dataclass
class Diff:
    """What importing a bundle into a tenant would change. Relations carry their bundle index (`i`)."""

    entities_added: list[dict[str, Any]]
    entities_unchanged: list[str]
    added: list[dict[str, Any]]
    changed: list[dict[str, Any]]
    conflicting: list[dict[str, Any]]
    unchanged: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "entities": {"added": self.entities_added, "unchanged": self.entities_unchanged},
            "relations": {"added": self.added, "changed": self.changed, "conflicting": self.conflicting,
                          "unchanged": self.unchanged},
            "summary": {"entities_added": len(self.entities_added), "entities_unchanged": len(self.entities_unchanged),
                        "relations_added": len(self.added), "relations_changed": len(self.changed),
                        "relations_conflicting": len(self.conflicting), "relations_unchanged": len(self.unchanged)},
        }


async def diff(store: GraphStore, tenant: str, bundle: Bundle) -> Diff:
    """Classify every entity (added / unchanged) and relation (added / changed: higher confidence than the
    tenant's own / conflicting with a verified or ontology fact / unchanged) against the tenant's graph."""
    keys = sorted({normalize(e.name) for e in bundle.entities})
    uid = await resolve_many(store, tenant, keys)
    out = Diff([], [], [], [], [], [])
    for e in bundle.entities:
        if normalize(e.name) in uid:
            out.entities_unchanged.append(e.name)
        else:
            out.entities_added.append({"name": e.name, "type": e.type, "domain": e.domain})
    rows = [{"i": i, "subject": uid[normalize(r.subject)], "object": uid[normalize(r.object)], "type": r.relation,
             "conflicting": conflicting_types(r.relation)} for i, r in enumerate(bundle.relations)
            if normalize(r.subject) in uid and normalize(r.object) in uid]
    existing = {r["i"]: r["found"] for r in await store.db.read(EXISTING, rows=rows, tenants=visible_tenants(tenant))}
    for i, rel in enumerate(bundle.relations):
        facts = existing.get(i, [])
        same = [f for f in facts if f["type"] == rel.relation]
        against = [f for f in facts if f["type"] != rel.relation]
        item = {"i": i, **_rel(rel)}
        if any(_is_verified(f) for f in against):
            out.conflicting.append({**item, "conflicts_with": [f for f in against if _is_verified(f)]})
        elif own := [f for f in same if f["tenant"] == tenant and f["confidence"] < rel.confidence]:
            out.changed.append({**item, "id": own[0]["id"], "before": {"confidence": own[0]["confidence"]},
                                "after": {"confidence": rel.confidence}})
        elif same:
            out.unchanged.append({**item, "id": same[0]["id"]})
        else:
            out.added.append({**item, "contradicts": against})
    return out


async def apply(store: GraphStore, tenant: str, bundle: Bundle, import_id: str,
                document: str | None = None) -> dict[str, Any]:
    """Write the added entities and the added and changed relations of a fresh diff in one transaction.
    Relations conflicting with verified facts are skipped. Safe to repeat (origin = import:<id>). Every written
    relation keeps the change set in its `imports` and the import's source document (`document`:
    `<document id>@sha256:<hex>`, when it names one) in its `documents`."""
    plan = await diff(store, tenant, bundle)
    added_keys = {normalize(e["name"]) for e in plan.entities_added}
    new_entities = [{"uid": entity_uid(tenant, normalize(e.name)), "key": normalize(e.name), "name": e.name,
                     "type": e.type, "domain": e.domain, "aliases": e.aliases,
                     "alias_keys": [k for a in e.aliases if (k := normalize(a))]}
                    for e in bundle.entities if normalize(e.name) in added_keys]
    todo = sorted([r["i"] for r in plan.added] + [r["i"] for r in plan.changed])
    origin = f"import:{import_id}"

    async def work(tx: AsyncManagedTransaction) -> list[str]:
        await tx_data(tx, CREATE_ENTITIES, rows=new_entities, tenant=tenant, source=IMPORTED, now=time.time(),
                      import_id=import_id)
        keys = sorted({normalize(n) for i in todo for n in (bundle.relations[i].subject, bundle.relations[i].object)})
        uid = await resolve_many_in(tx, tenant, keys)
        rows = [{"subject": uid[normalize(rel.subject)], "object": uid[normalize(rel.object)], "type": rel.relation,
                 "confidence": rel.confidence, "domain": rel.domain} for rel in (bundle.relations[i] for i in todo)]
        written = await store.assert_many_in(tx, rows, Provenance(tenant=tenant, source=IMPORTED, origin=origin,
                                                                  import_id=import_id, document=document))
        return [w.id for w in written]

    written = await store.db.transaction(work)
    return {"entities_created": len(new_entities), "relations_written": written,
            "skipped_conflicting": [r["i"] for r in plan.conflicting], "unchanged": len(plan.unchanged)}
