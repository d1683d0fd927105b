"""Reads from Neo4j for graph-rag: lexicons per tenant (cached by graph version), facts within two
hops, and procedural requirement chains. Flagged and low-trust relations are never returned."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from graph_rag.terms import Lexicon
from moe_core.graph.driver import GraphDB
from moe_core.graph.vocab import PROCEDURAL_TYPES

LEXICON = """
MATCH (e:Entity)
WHERE e.tenant = $tenant
RETURN e.uid AS uid, e.name AS name, e.key AS key, e.alias_keys AS alias_keys
"""

FACTS = """
MATCH (e:Entity)
WHERE e.uid IN $uids AND e.tenant IN $tenants
MATCH (e)(()-[r:REL WHERE r.tenant IN $tenants AND NOT coalesce(r.flagged, false)
              AND coalesce(r.trust, 0.0) >= $floor]-(x:Entity WHERE x.tenant IN $tenants)){1,2}(n)
UNWIND range(0, size(r) - 1) AS i
WITH r[i] AS rel, i + 1 AS hop
WITH rel, min(hop) AS hop
WITH rel, hop, startNode(rel) AS a, endNode(rel) AS b
RETURN rel.id AS id, rel.type AS type, a.name AS subject, b.name AS object, a.uid AS subject_uid,
       b.uid AS object_uid, rel.trust AS trust, rel.source AS source, rel.verified AS verified,
       rel.tenant AS tenant, hop
ORDER BY hop, trust DESC, id
LIMIT $fetch
"""

CHAINS = """
MATCH (e:Entity)
WHERE e.uid IN $uids AND e.tenant IN $tenants
MATCH p = (e)(()-[r:REL WHERE r.type IN $procedural AND r.tenant IN $tenants AND NOT coalesce(r.flagged, false)
                   AND coalesce(r.trust, 0.0) >= $floor]->(x:Entity WHERE x.tenant IN $tenants)){1,4}(end)
RETURN [n IN nodes(p) | n.name] AS names, [q IN r | q.type] AS types, [q IN r | q.id] AS ids,
       [q IN r | q.trust] AS trusts
LIMIT $fetch
"""


class Retriever:
    def __init__(self, db: GraphDB, max_cached_tenants: int = 256) -> None:
        self.db = db
        self._lexicons: OrderedDict[str, tuple[int, Lexicon]] = OrderedDict()
        self.max_cached = max_cached_tenants

    async def lexicon(self, tenant: str, version: int) -> Lexicon:
        """The tenant's lexicon, reloaded only when the tenant's graph version moved."""
        cached = self._lexicons.get(tenant)
        if cached is not None and cached[0] == version:
            self._lexicons.move_to_end(tenant)
            return cached[1]
        lexicon = Lexicon.build(await self.db.read(LEXICON, tenant=tenant), tenant)
        self._lexicons[tenant] = (version, lexicon)
        while len(self._lexicons) > self.max_cached:
            self._lexicons.popitem(last=False)
        return lexicon

    async def facts(self, uids: list[str], tenants: list[str], floor: float, fetch: int) -> list[dict[str, Any]]:
        if not uids:
            return []
        return await self.db.read(FACTS, uids=uids, tenants=tenants, floor=floor, fetch=fetch)

    async def chains(self, uids: list[str], tenants: list[str], floor: float, fetch: int) -> list[dict[str, Any]]:
        if not uids or fetch <= 0:  # fetch 0: chains are switched off (MOE_GRAPH_MAX_CHAINS=0)
            return []
        return await self.db.read(CHAINS, uids=uids, tenants=tenants, floor=floor, fetch=fetch,
                                  procedural=list(PROCEDURAL_TYPES))
