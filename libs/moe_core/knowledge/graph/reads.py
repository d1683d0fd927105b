"""Read-only views for operators and clients: graph statistics and entity search, tenant-scoped."""

from __future__ import annotations

import time
from typing import Any

from moe_core.knowledge.graph.driver import GraphDB
from moe_core.knowledge.graph.names import normalize

COUNTS = """
CALL () { MATCH (e:Entity) WHERE e.tenant IN $tenants RETURN count(e) AS entities }
CALL () {
  MATCH (:Entity)-[r:REL]->(:Entity) WHERE r.tenant IN $tenants
  RETURN count(r) AS relations, sum(CASE WHEN r.verified THEN 1 ELSE 0 END) AS verified,
         sum(CASE WHEN r.flagged THEN 1 ELSE 0 END) AS flagged
}
CALL () { MATCH (q:Quarantine) WHERE q.tenant IN $tenants AND q.status = 'pending'
          AND (q.expires_at IS NULL OR q.expires_at > $now) RETURN count(q) AS quarantined }
CALL () { MATCH (s:Synthesis) WHERE s.tenant IN $tenants RETURN count(s) AS syntheses }
RETURN entities, relations, verified, flagged, quarantined, syntheses
"""

BY_TYPE = """
MATCH (:Entity)-[r:REL]->(:Entity) WHERE r.tenant IN $tenants
RETURN r.tenant AS tenant, r.type AS type, r.source AS source, count(*) AS n
"""

ENTITIES_BY_TENANT = """
MATCH (e:Entity) WHERE e.tenant IN $tenants
RETURN e.tenant AS tenant, count(*) AS n
"""

SEARCH = """
MATCH (e:Entity)
WHERE e.tenant IN $tenants AND (e.key CONTAINS $q OR any(a IN e.alias_keys WHERE a CONTAINS $q))
WITH e, CASE WHEN e.key = $q OR $q IN e.alias_keys THEN 0 WHEN e.key STARTS WITH $q THEN 1 ELSE 2 END AS rank
ORDER BY rank, size(e.key), e.name
LIMIT $limit
OPTIONAL MATCH (e)-[r:REL]-(o:Entity)
WHERE r.tenant IN $tenants AND o.tenant IN $tenants
WITH e, rank, r, o
ORDER BY r.trust DESC, r.id
WITH e, rank, collect(CASE WHEN r IS NULL THEN NULL ELSE {
    id: r.id, type: r.type, direction: CASE WHEN startNode(r) = e THEN 'out' ELSE 'in' END, other: o.name,
    trust: r.trust, verified: r.verified, flagged: r.flagged, source: r.source, version: r.version
}END)[..$max_relations] AS relations
RETURN e {.uid, .name, .type, .domain, .aliases, .tenant, .source} AS entity, relations, rank
ORDER BY rank, size(e.key), e.name
"""


async def stats(db: GraphDB, tenants: list[str]) -> dict[str, Any]:
    counts = (await db.read(COUNTS, tenants=tenants, now=time.time()))[0]
    by_type: dict[str, int] = {}
    by_source: dict[str, int] = {}
    by_tenant: dict[str, dict[str, int]] = {t: {"entities": 0, "relations": 0} for t in tenants}
    for row in await db.read(BY_TYPE, tenants=tenants):
        by_type[row["type"]] = by_type.get(row["type"], 0) + row["n"]
        by_source[row["source"]] = by_source.get(row["source"], 0) + row["n"]
        by_tenant[row["tenant"]]["relations"] += row["n"]
    for row in await db.read(ENTITIES_BY_TENANT, tenants=tenants):
        by_tenant[row["tenant"]]["entities"] = row["n"]
    return {**counts, "relations_by_type": dict(sorted(by_type.items())),
            "relations_by_source": dict(sorted(by_source.items())), "by_tenant": by_tenant}


async def search(db: GraphDB, tenants: list[str], text: str, limit: int = 10,
                 max_relations: int = 20) -> list[dict[str, Any]]:
    q = normalize(text)
    if not q:
        return []
    rows = await db.read(SEARCH, tenants=tenants, q=q, limit=limit, max_relations=max_relations)
    return [{**r["entity"], "relations": r["relations"]} for r in rows]
