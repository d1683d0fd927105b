"""Linting the graph of one tenant (or of all, tenant '*'): contradiction resolution, deletion of
decayed relations, orphan cleanup. Returns every deletion so each becomes an audit event."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from gap_healer import core
from moe_core.knowledge.graph.driver import GraphDB
from moe_core.knowledge.graph.store import BUMP_VERSION
from moe_core.knowledge.graph.trust import TrustPolicy
from moe_core.knowledge.graph.vocab import ALL_TENANTS, SHARED_TENANT, conflict_pairs

CONTRADICTIONS = """
MATCH (a:Entity)-[r1:REL]->(b:Entity)<-[r2:REL]-(a)
WHERE [r1.type, r2.type] IN $pairs AND r1.id < r2.id
  AND ($all OR r1.tenant = $tenant OR r2.tenant = $tenant)
  AND (r1.tenant = r2.tenant OR r1.tenant = $shared OR r2.tenant = $shared)
RETURN a.name AS subject, b.name AS object,
       r1 {.id, .type, .tenant, .source, .verified, .trust, .created_at, .assertions} AS first,
       r2 {.id, .type, .tenant, .source, .verified, .trust, .created_at, .assertions} AS second
LIMIT $limit
"""

DECAY_PAGE = """
MATCH (a:Entity)-[r:REL]->(b:Entity)
WHERE r.id > $after AND ($all OR r.tenant = $tenant) AND r.source <> 'ontology'
  AND NOT coalesce(r.verified, false) AND coalesce(r.assertions, 1) <= 1
RETURN r.id AS id, r.type AS type, r.tenant AS tenant, r.source AS source, r.confidence AS confidence,
       r.asserted_at AS asserted_at, r.verified AS verified, r.assertions AS assertions, a.name AS subject,
       b.name AS object
ORDER BY r.id
LIMIT $limit
"""

# Deletes only if the relation still qualifies (a concurrent verification or re-assertion saves it). Every relation
# deleted moves its tenant's version (GraphVersion.n): graph-rag's cached facts and graph-ingest's remembered size of
# the tenant (measure.Sizes) are then read again (tests/graph/house/test_relation_deletes.py).
DELETE_DECAYED = """
UNWIND $ids AS rid
MATCH ()-[r:REL {id: rid}]->()
WHERE NOT coalesce(r.verified, false) AND coalesce(r.assertions, 1) <= 1 AND r.source <> 'ontology'
WITH r, r.id AS id, r.tenant AS tenant
DELETE r
WITH id, tenant
FOREACH (_ IN CASE WHEN tenant IS NULL THEN [] ELSE [1] END |
  MERGE (v:GraphVersion {tenant: tenant})
  SET v.n = coalesce(v.n, 0) + 1)
RETURN id, tenant
"""

DELETE_RELATION = """
MATCH ()-[r:REL {id: $id}]->()
WHERE r.source <> 'ontology'
WITH r, r.id AS id, r.tenant AS tenant
DELETE r
WITH id, tenant
FOREACH (_ IN CASE WHEN tenant IS NULL THEN [] ELSE [1] END |
  MERGE (v:GraphVersion {tenant: tenant})
  SET v.n = coalesce(v.n, 0) + 1)
RETURN id, tenant
"""

ORPHANS = """
MATCH (e:Entity)
WHERE ($all OR e.tenant = $tenant) AND e.tenant <> $shared AND NOT (e)-[:REL]-()
RETURN e.uid AS uid, e.name AS name, e.tenant AS tenant
ORDER BY e.uid
LIMIT $limit
"""

DELETE_ORPHAN = """
MATCH (e:Entity {uid: $uid})
WHERE e.tenant <> $shared AND NOT (e)-[:REL]-()
CALL (e) { MATCH (e)<-[:ALIAS_OF]-(a:AliasKey) DETACH DELETE a }
WITH e, e.uid AS uid, e.tenant AS tenant
DETACH DELETE e
WITH uid, tenant
MERGE (v:GraphVersion {tenant: tenant})
SET v.epoch = randomUUID()
RETURN uid, tenant
"""


@dataclass(frozen=True)
class Deletion:
    kind: str  # relation | entity
    id: str
    tenant: str
    check: str  # contradictions | decay | orphans
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


class Linter:
    def __init__(self, db: GraphDB, policy: TrustPolicy, page_size: int = 500) -> None:
        self.db = db
        self.policy = policy
        self.page_size = page_size

    def _scope(self, tenant: str) -> dict[str, Any]:
        return {"tenant": tenant, "all": tenant == ALL_TENANTS, "shared": SHARED_TENANT}

    async def lint(self, tenant: str, checks: list[str]) -> list[Deletion]:
        deletions: list[Deletion] = []
        for check in ("contradictions", "decay", "orphans"):  # orphans last: decay leaves some behind
            if check in checks:
                deletions += await getattr(self, check)(tenant)
        touched = sorted({d.tenant for d in deletions})
        if touched:
            await self.db.write(BUMP_VERSION, tenants=touched)
        return deletions

    async def contradictions(self, tenant: str) -> list[Deletion]:
        out: list[Deletion] = []
        rows = await self.db.read(CONTRADICTIONS, pairs=conflict_pairs(), limit=self.page_size, **self._scope(tenant))
        gone: set[str] = set()
        for row in rows:
            first, second = row["first"], row["second"]
            if first["id"] in gone or second["id"] in gone:
                continue
            loser = core.contradiction_loser(first, second)
            if loser is None or (tenant != ALL_TENANTS and loser["tenant"] != tenant):
                continue
            winner = second if loser is first else first
            deleted = await self.db.write(DELETE_RELATION, id=loser["id"])
            if deleted:
                gone.add(loser["id"])
                reason = (f"contradiction: {row['subject']} {loser['type']} {row['object']} loses to "
                          f"{winner['type']} ({winner['source']}, trust {winner.get('trust') or 0:.2f})")
                out.append(Deletion("relation", loser["id"], loser["tenant"], "contradictions", reason,
                                    {"deleted": loser, "kept": winner, "subject": row["subject"],
                                     "object": row["object"]}))
        return out

    async def decay(self, tenant: str) -> list[Deletion]:
        out: list[Deletion] = []
        now, after = time.time(), ""
        while True:
            rows = await self.db.read(DECAY_PAGE, after=after, limit=self.page_size, **self._scope(tenant))
            if not rows:
                return out
            doomed = {}
            for row in rows:
                rule, trust = core.decayed(row, self.policy, now)
                if rule:
                    doomed[row["id"]] = (row, trust)
            if doomed:
                for gone in await self.db.write(DELETE_DECAYED, ids=list(doomed)):
                    row, trust = doomed[gone["id"]]
                    reason = (f"decay: trust {trust:.3f} < {self.policy.decay_floor}, unverified, asserted once "
                              f"({row['subject']} {row['type']} {row['object']})")
                    out.append(Deletion("relation", gone["id"], gone["tenant"], "decay", reason,
                                        {"trust": trust, "subject": row["subject"], "type": row["type"],
                                         "object": row["object"], "source": row["source"]}))
            after = rows[-1]["id"]

    async def orphans(self, tenant: str) -> list[Deletion]:
        out: list[Deletion] = []
        while True:
            rows = await self.db.read(ORPHANS, limit=self.page_size, **self._scope(tenant))
            deleted_any = False
            for row in rows:
                if await self.db.write(DELETE_ORPHAN, uid=row["uid"], shared=SHARED_TENANT):
                    deleted_any = True
                    out.append(Deletion("entity", row["uid"], row["tenant"], "orphans",
                                        f"orphan: {row['name']} has no relations", {"name": row["name"]}))
            if len(rows) < self.page_size or not deleted_any:
                return out
