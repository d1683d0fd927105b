"""Writes and checks shared by the graph services and the gateway: entity resolution, conflict check,
blast radius, MERGE of a relation (version counter, provenance, trust) and the per-tenant graph version.

A relation's provenance: `response_id` (the origin that created it), `asserted_by` (the last origins that asserted
it: answers `<response id>`, imports `import:<change set id>`), and, kept whole, `imports` (every knowledge import's
change set id that wrote it) and `documents` (every source document those imports named, as
`<document id>@sha256:<hex>`)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from neo4j import AsyncManagedTransaction

from moe_core.knowledge.graph.checks import RESOLVE_MANY
from moe_core.knowledge.graph.driver import GraphDB, tx_data
from moe_core.knowledge.graph.measure import MAX_STEPS, Counted, counted_in, size_of
from moe_core.knowledge.graph.model import Provenance, Triple
from moe_core.knowledge.graph.names import entity_uid, normalize, relation_id
from moe_core.knowledge.graph.trust import TrustPolicy
from moe_core.knowledge.graph.vocab import conflicting_types, visible_tenants
from moe_core.knowledge.graph.write_many import WRITE_MANY

MAX_ASSERTED_BY = 20  # the origins a relation keeps in `asserted_by`, and in `learned_from`

# by name or alias (through its alias nodes, graph.alias_nodes)
RESOLVE_ENTITY = """
CALL () {
  MATCH (e:Entity {key: $key}) WHERE e.tenant IN $tenants
  RETURN e
  UNION
  MATCH (a:AliasKey {key: $key})-[:ALIAS_OF]->(e:Entity) WHERE a.tenant IN $tenants AND e.tenant IN $tenants
  RETURN e
}
RETURN e.uid AS uid, e.name AS name, e.tenant AS tenant
ORDER BY CASE WHEN e.tenant = $tenant THEN 0 ELSE 1 END, CASE WHEN e.key = $key THEN 0 ELSE 1 END
LIMIT 1
"""

CREATE_ENTITY = """
MERGE (e:Entity {uid: $uid})
ON CREATE SET e.name = $name, e.key = $key, e.tenant = $tenant, e.type = $type, e.domain = $domain,
              e.aliases = [], e.alias_keys = [], e.is_class = false, e.source = $source, e.created_at = $now
WITH e
MERGE (v:GraphVersion {tenant: e.tenant})
SET v.lex = coalesce(v.lex, 0) + 1, v.epoch = coalesce(v.epoch, randomUUID())
SET e.lex = v.lex
RETURN e.uid AS uid, e.name AS name, e.tenant AS tenant
"""

# CREATE_ENTITY for many entities of one writer (keep the two in step)
CREATE_ENTITIES = """
UNWIND $rows AS row
MERGE (e:Entity {uid: row.uid})
ON CREATE SET e.name = row.name, e.key = row.key, e.tenant = $tenant, e.type = $type, e.domain = $domain,
              e.aliases = [], e.alias_keys = [], e.is_class = false, e.source = $source, e.created_at = $now
WITH e
MERGE (v:GraphVersion {tenant: e.tenant})
SET v.lex = coalesce(v.lex, 0) + 1, v.epoch = coalesce(v.epoch, randomUUID())
SET e.lex = v.lex
"""

FIND_CONFLICTS = """
MATCH (a:Entity {uid: $subject})-[r:REL]->(b:Entity {uid: $object})
WHERE r.type IN $conflicting AND r.tenant IN $tenants
RETURN r.id AS id, r.type AS type, r.source AS source, r.verified AS verified, r.trust AS trust,
       r.tenant AS tenant
"""

REACH = """
MATCH (e:Entity) WHERE e.uid IN $uids
OPTIONAL MATCH (e)(()-[r:REL WHERE r.tenant IN $tenants]-(x:Entity WHERE x.tenant IN $tenants)){1,2}(n)
WITH collect(DISTINCT e) AS starts, collect(DISTINCT n) AS reached
RETURN size([n IN reached WHERE NOT n IN starts]) AS reach
"""

ASSERT_RELATION = """
MATCH (a:Entity {uid: $subject}), (b:Entity {uid: $object})
MERGE (a)-[r:REL {id: $id}]->(b)
ON CREATE SET r.type = $type, r.tenant = $tenant, r.source = $source, r.domain = $domain,
              r.confidence = $confidence, r.created_at = $now, r.asserted_at = $now, r.version = 0,
              r.assertions = 0, r.asserted_by = [], r.verified = false, r.flagged = false,
              r.expert = $expert, r.model = $model, r.response_id = $origin
WITH r, r.version = 0 AS created, $origin IN r.asserted_by AS repeated
SET r.version = CASE WHEN repeated THEN r.version ELSE r.version + 1 END,
    r.assertions = CASE WHEN repeated THEN r.assertions ELSE r.assertions + 1 END,
    r.asserted_by = CASE WHEN repeated THEN r.asserted_by ELSE (r.asserted_by + [$origin])[-$keep..] END,
    r.asserted_at = CASE WHEN repeated THEN r.asserted_at ELSE $now END,
    r.confidence = CASE WHEN r.confidence < $confidence THEN $confidence ELSE r.confidence END,
    r.imports = CASE WHEN $import_id IS NULL OR $import_id IN coalesce(r.imports, []) THEN coalesce(r.imports, [])
                     ELSE coalesce(r.imports, []) + [$import_id] END,
    r.documents = CASE WHEN $document IS NULL OR $document IN coalesce(r.documents, []) THEN coalesce(r.documents, [])
                       ELSE coalesce(r.documents, []) + [$document] END,
    r.learned_from = CASE WHEN $learned_from IS NULL OR $learned_from IN coalesce(r.learned_from, [])
                          THEN r.learned_from ELSE (coalesce(r.learned_from, []) + [$learned_from])[-$keep..] END
RETURN r.id AS id, created, repeated, r.version AS version, r.assertions AS assertions,
       r.confidence AS confidence, r.source AS source, r.asserted_at AS asserted_at, r.verified AS verified
"""

# ASSERT_RELATION for many relations of one writer in one statement (bulk imports). Keep the two in step:
# tests/graph/control_plane/test_knowledge_imports.py checks that both leave the same properties.
ASSERT_RELATIONS = """
UNWIND $rows AS row
MATCH (a:Entity {uid: row.subject}), (b:Entity {uid: row.object})
MERGE (a)-[r:REL {id: row.id}]->(b)
ON CREATE SET r.type = row.type, r.tenant = $tenant, r.source = $source, r.domain = row.domain,
              r.confidence = row.confidence, r.created_at = $now, r.asserted_at = $now, r.version = 0,
              r.assertions = 0, r.asserted_by = [], r.verified = false, r.flagged = false,
              r.expert = $expert, r.model = $model, r.response_id = $origin
WITH row, r, r.version = 0 AS created, $origin IN r.asserted_by AS repeated
SET r.version = CASE WHEN repeated THEN r.version ELSE r.version + 1 END,
    r.assertions = CASE WHEN repeated THEN r.assertions ELSE r.assertions + 1 END,
    r.asserted_by = CASE WHEN repeated THEN r.asserted_by ELSE (r.asserted_by + [$origin])[-$keep..] END,
    r.asserted_at = CASE WHEN repeated THEN r.asserted_at ELSE $now END,
    r.confidence = CASE WHEN r.confidence < row.confidence THEN row.confidence ELSE r.confidence END,
    r.imports = CASE WHEN $import_id IS NULL OR $import_id IN coalesce(r.imports, []) THEN coalesce(r.imports, [])
                     ELSE coalesce(r.imports, []) + [$import_id] END,
    r.documents = CASE WHEN $document IS NULL OR $document IN coalesce(r.documents, []) THEN coalesce(r.documents, [])
                       ELSE coalesce(r.documents, []) + [$document] END,
    r.learned_from = CASE WHEN $learned_from IS NULL OR $learned_from IN coalesce(r.learned_from, [])
                          THEN r.learned_from ELSE (coalesce(r.learned_from, []) + [$learned_from])[-$keep..] END
RETURN r.id AS id, row.subject AS subject, row.object AS object, created, repeated, r.version AS version,
       r.confidence AS confidence, r.source AS source, r.asserted_at AS asserted_at, r.verified AS verified
"""

SET_TRUST = """
UNWIND $rows AS row
MATCH ()-[r:REL {id: row.id}]->()
SET r.trust = row.trust
"""

BUMP_VERSION = """
UNWIND $tenants AS t
MERGE (v:GraphVersion {tenant: t})
SET v.n = coalesce(v.n, 0) + 1, v.epoch = coalesce(v.epoch, randomUUID())
"""

# SET_TRUST, then BUMP_VERSION ($tenants: [] moves no version), in one statement: one round trip where two cost
# Neo4j a statement's overhead each (issue 52)
SET_TRUST_BUMP = """
UNWIND $rows AS row
MATCH ()-[r:REL {id: row.id}]->()
SET r.trust = row.trust
WITH count(*) AS trusted
UNWIND $tenants AS t
MERGE (v:GraphVersion {tenant: t})
SET v.n = coalesce(v.n, 0) + 1, v.epoch = coalesce(v.epoch, randomUUID())
"""

READ_VERSIONS = """
UNWIND $tenants AS t
OPTIONAL MATCH (v:GraphVersion {tenant: t})
RETURN t AS tenant, coalesce(v.n, 0) AS n
"""


@dataclass(frozen=True)
class Written:
    id: str
    created: bool
    repeated: bool
    version: int
    subject_uid: str
    object_uid: str
    trust: float


class GraphStore:
    def __init__(self, db: GraphDB, policy: TrustPolicy | None = None) -> None:
        self.db = db
        self.policy = policy or TrustPolicy()

    async def resolve(self, tenant: str, name: str) -> dict[str, Any] | None:
        """The visible entity called `name` (by name or alias), the tenant's own before the shared one."""
        rows = await self.db.read(RESOLVE_ENTITY, tenants=visible_tenants(tenant), tenant=tenant, key=normalize(name))
        return rows[0] if rows else None

    async def conflicts(self, tenant: str, triple: Triple) -> list[dict[str, Any]]:
        """Visible relations that contradict `triple` between the same two (existing) entities."""
        opposite = conflicting_types(triple.relation)
        if not opposite:
            return []
        subject, obj = await self.resolve(tenant, triple.subject), await self.resolve(tenant, triple.object)
        if subject is None or obj is None:
            return []
        return await self.db.read(FIND_CONFLICTS, subject=subject["uid"], object=obj["uid"], conflicting=opposite,
                                  tenants=visible_tenants(tenant))

    async def reach(self, tenant: str, triple: Triple) -> int:
        """Blast radius: distinct entities within two hops of the triple's existing endpoints."""
        ends = [await self.resolve(tenant, triple.subject), await self.resolve(tenant, triple.object)]
        uids = [e["uid"] for e in ends if e is not None]
        if not uids:
            return 0
        rows = await self.db.read(REACH, uids=uids, tenants=visible_tenants(tenant))
        return int(rows[0]["reach"]) if rows else 0

    async def write_triple(self, triple: Triple, prov: Provenance) -> Written:
        async def work(tx: AsyncManagedTransaction) -> Written:
            return await self.write_in(tx, triple, prov)

        return await self.db.transaction(work)

    async def write_in(self, tx: AsyncManagedTransaction, triple: Triple, prov: Provenance) -> Written:
        """MERGE the triple inside an open transaction. Idempotent per (relation, origin)."""
        now = time.time()
        subject = await self._entity(tx, triple.subject, prov, now)
        obj = await self._entity(tx, triple.object, prov, now)
        rid = relation_id(prov.tenant, subject, triple.relation, obj)
        rows = await tx_data(tx, ASSERT_RELATION, subject=subject, object=obj, id=rid, type=triple.relation,
                             tenant=prov.tenant, source=prov.source, domain=prov.domain,
                             confidence=triple.confidence, now=now, expert=prov.expert, model=prov.model,
                             origin=prov.origin or f"write:{now}", keep=MAX_ASSERTED_BY,
                             import_id=prov.import_id, document=prov.document, learned_from=prov.learned_from)
        row = rows[0]
        trust = self.policy.trust(confidence=row["confidence"], source=row["source"],
                                  asserted_at=row["asserted_at"], verified=row["verified"], now=now)
        await tx_data(tx, SET_TRUST_BUMP, rows=[{"id": rid, "trust": trust}],
                      tenants=[] if row["repeated"] else [prov.tenant])
        return Written(rid, row["created"], row["repeated"], row["version"], subject, obj, trust)

    async def write_many_in(self, tx: AsyncManagedTransaction, triples: list[Triple], prov: Provenance,
                            known: Mapping[str, str] | None = None) -> list[Written]:
        """write_in for each of `triples`, in order: write_many_counted_in without the count."""
        return (await self.write_many_counted_in(tx, triples, prov, known, count=False))[0]

    async def write_many_counted_in(self, tx: AsyncManagedTransaction, triples: list[Triple], prov: Provenance,
                                    known: Mapping[str, str] | None = None, count: bool = True,
                                    since: Counted | None = None) -> tuple[list[Written], Counted | None]:
        """write_in for each of `triples`, in order, in one statement whatever their number (write_many.WRITE_MANY;
        issue 52: seven per triple, then four), and, when `count`, the tenant's size after them with its version
        (measure.counted_in) from the same statement. Their names resolved as write_in resolves each
        (checks.RESOLVE_MANY), the missing entities created, the relations asserted, their trust set, the version
        moved once. A relation two of the triples name (two names of one entity) is asserted once, with the higher
        confidence, as the second write of it would leave it. Idempotent per (relation, prov.origin).

        `known`: the entity uid each name's key resolved to in the caller's read just before (checks.resolve_names;
        a key not in it is a new entity), used instead of resolving again here, so the triples are written between
        the entities the caller checked; should one of those entities be gone meanwhile, resolved here after all.
        `since`: the caller's count of the tenant (its "before"): the size after is that count plus what the statement
        made while the version shows no other writer since it (WRITE_MANY), a count otherwise or every MAX_STEPS."""
        if not triples:
            return [], (await counted_in(tx, prov.tenant) if count else None)
        names: dict[str, str] = {}  # key -> the name a new entity gets: its first mention, as write_in's
        for t in triples:
            for name in (t.subject, t.object):
                names.setdefault(normalize(name), name)
        if known is None:
            found = await tx_data(tx, RESOLVE_MANY, keys=sorted(names), tenants=visible_tenants(prov.tenant),
                                  tenant=prov.tenant)
            uids = {r["key"]: str(r["uid"]) for r in found if r["uid"] is not None}
        else:
            uids = {k: known[k] for k in names if k in known}
        missing = [{"uid": entity_uid(prov.tenant, k), "name": n, "key": k} for k, n in names.items() if k not in uids]
        uids.update({m["key"]: m["uid"] for m in missing})
        now = time.time()
        rows: dict[str, dict[str, Any]] = {}
        for t in triples:
            s, o = uids[normalize(t.subject)], uids[normalize(t.object)]
            rid = relation_id(prov.tenant, s, t.relation, o)
            confidence = max(t.confidence, rows[rid]["confidence"]) if rid in rows else t.confidence
            rows[rid] = {"id": rid, "subject": s, "object": o, "type": t.relation, "confidence": confidence,
                         "domain": prov.domain,  # the trust it gets if the statement creates it (asserted now)
                         "trust": self.policy.trust(confidence=confidence, source=prov.source, asserted_at=now,
                                                    verified=False, now=now)}
        carried = since is not None and since.steps < MAX_STEPS
        [row] = await tx_data(tx, WRITE_MANY, entities=missing, rows=list(rows.values()), tenant=prov.tenant,
                              type=prov.entity_type, domain=prov.domain, source=prov.source, now=now,
                              expert=prov.expert, model=prov.model, origin=prov.origin or f"write:{now}",
                              keep=MAX_ASSERTED_BY, import_id=prov.import_id, document=prov.document,
                              learned_from=prov.learned_from, count=count,
                              since=since.version if carried and since else None,
                              before=since.counts if carried and since else None)
        if known is not None and len(row["written"]) < len(rows):  # an entity of `known` is gone (a relation
            # asserted already is asserted again: counted once per origin; the count taken again after it)
            return await self.write_many_counted_in(tx, triples, prov, None, count)
        written = {w.id: w for w in self._written(row["written"], rows, now)}
        existing = [{"id": w.id, "trust": w.trust} for w in written.values() if not w.created]
        if existing:  # their trust from the values the statement left them (confidence, source, verified)
            await tx_data(tx, SET_TRUST, rows=existing)
        steps = since.steps + 1 if row["known"] and since is not None else 0
        counted = Counted(list(row["version"]), size_of(row), steps) if count else None
        return [written[relation_id(prov.tenant, uids[normalize(t.subject)], t.relation, uids[normalize(t.object)])]
                for t in triples], counted

    def _written(self, out: list[dict[str, Any]], rows: Mapping[str, dict[str, Any]], now: float) -> list[Written]:
        """WRITE_MANY's relations: a created one with the trust the statement set, another with its trust now."""
        return [Written(r["id"], r["created"], r["repeated"], r["version"], r["subject"], r["object"],
                        rows[r["id"]]["trust"] if r["created"] else
                        self.policy.trust(confidence=r["confidence"], source=r["source"], asserted_at=r["asserted_at"],
                                          verified=r["verified"], now=now))
                for r in out]

    async def assert_many_in(self, tx: AsyncManagedTransaction, rows: list[dict[str, Any]],
                             prov: Provenance) -> list[Written]:
        """write_in for many relations between existing entities, in one statement: rows of `subject` and
        `object` (entity uids), `type`, `confidence`, `domain`. Idempotent per (relation, prov.origin)."""
        if not rows:
            return []
        now = time.time()
        rows = [{**r, "id": relation_id(prov.tenant, r["subject"], r["type"], r["object"])} for r in rows]
        out = await tx_data(tx, ASSERT_RELATIONS, rows=rows, tenant=prov.tenant, source=prov.source, now=now,
                            expert=prov.expert, model=prov.model, origin=prov.origin or f"write:{now}",
                            keep=MAX_ASSERTED_BY, import_id=prov.import_id, document=prov.document,
                            learned_from=prov.learned_from)
        written = [Written(r["id"], r["created"], r["repeated"], r["version"], r["subject"], r["object"],
                           self.policy.trust(confidence=r["confidence"], source=r["source"],
                                             asserted_at=r["asserted_at"], verified=r["verified"], now=now))
                   for r in out]
        await tx_data(tx, SET_TRUST_BUMP, rows=[{"id": w.id, "trust": w.trust} for w in written],
                      tenants=[prov.tenant] if any(not w.repeated for w in written) else [])
        return written

    async def _entity(self, tx: AsyncManagedTransaction, name: str, prov: Provenance, now: float) -> str:
        key = normalize(name)
        found = await tx_data(tx, RESOLVE_ENTITY, tenants=visible_tenants(prov.tenant), tenant=prov.tenant, key=key)
        if found:
            return str(found[0]["uid"])
        rows = await tx_data(tx, CREATE_ENTITY, uid=entity_uid(prov.tenant, key), name=name, key=key,
                             tenant=prov.tenant, type=prov.entity_type, domain=prov.domain, source=prov.source, now=now)
        return str(rows[0]["uid"])

    async def versions(self, tenants: list[str]) -> dict[str, int]:
        rows = await self.db.read(READ_VERSIONS, tenants=tenants)
        return {r["tenant"]: int(r["n"]) for r in rows}
