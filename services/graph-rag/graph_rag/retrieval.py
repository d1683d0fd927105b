"""Reads from Neo4j for graph-rag: lexicons per tenant (cached by graph version, and when it moved, only the entities
written since read), facts within two hops, and procedural requirement chains, with the graph versions they were
read at. Flagged and low-trust relations are never returned.

How a lexicon reads only what changed: every statement that writes an entity's name, key or aliases stamps it with
its tenant's lexicon counter (`GraphVersion.lex`, counted up under the version node's write lock, so stamps follow
commit order), and every statement that deletes an entity gives the tenant a new `GraphVersion.epoch`
(tests/graph/house/test_lexicon_stamps.py finds every such statement and checks both). A cached lexicon reads the
entities stamped after its counter; a new epoch, a counter or version that went back (a deleted version node) or an
entity renamed or without a key it had means a whole read."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from graph_rag.terms import Lexicon
from moe_core.knowledge.graph.driver import GraphDB
from moe_core.knowledge.graph.vocab import PROCEDURAL_TYPES

# The counter and epoch first: an entity written while the query runs is read again next time, never missed.
LEXICON = """
OPTIONAL MATCH (v:GraphVersion {tenant: $tenant})
WITH coalesce(v.lex, 0) AS lex, v.epoch AS epoch
CALL () {
  MATCH (e:Entity)
  WHERE e.tenant = $tenant
  RETURN collect({uid: e.uid, name: e.name, key: e.key, alias_keys: e.alias_keys}) AS entities
}
RETURN lex, epoch, entities
"""

LEXICON_SINCE = """
OPTIONAL MATCH (v:GraphVersion {tenant: $tenant})
WITH coalesce(v.lex, 0) AS lex, v.epoch AS epoch
CALL () {
  MATCH (e:Entity)
  WHERE e.tenant = $tenant AND e.lex > toInteger($since)  // typed: an index seek, not a scan
  RETURN collect({uid: e.uid, name: e.name, key: e.key, alias_keys: e.alias_keys}) AS entities
}
RETURN lex, epoch, entities
"""

# The tenants' graph versions, then the facts within two hops and the procedural requirement chains, in one round
# trip: Neo4j's floor per query is about 1.4 ms of its CPU and 0.5 ms of ours (`python -m bench.graph_task_costs`),
# so two reads cost more than one. The versions are read first: a write committed while the query runs can make
# the facts newer than the versions they are stored under (rebuilt at the next request), never older.
CONTEXT = """
CALL () {
  UNWIND $tenants AS t
  OPTIONAL MATCH (v:GraphVersion {tenant: t})
  RETURN collect([t, coalesce(v.n, 0)]) AS versions
}
CALL () {
  MATCH (e:Entity)
  WHERE e.uid IN $uids AND e.tenant IN $tenants
  MATCH (e)(()-[r:REL WHERE r.tenant IN $tenants AND NOT coalesce(r.flagged, false)
                AND coalesce(r.trust, 0.0) >= $floor]-(x:Entity WHERE x.tenant IN $tenants)){1,2}(n)
  UNWIND range(0, size(r) - 1) AS i
  WITH r[i] AS rel, i + 1 AS hop
  WITH rel, min(hop) AS hop
  WITH rel, hop, startNode(rel) AS a, endNode(rel) AS b
  ORDER BY hop, rel.trust DESC, rel.id
  LIMIT $fetch
  RETURN collect({id: rel.id, type: rel.type, subject: a.name, object: b.name, subject_uid: a.uid,
                  object_uid: b.uid, trust: rel.trust, source: rel.source, verified: rel.verified,
                  tenant: rel.tenant, hop: hop}) AS facts
}
CALL () {
  MATCH (e:Entity)
  WHERE $chain_fetch > 0 AND e.uid IN $uids AND e.tenant IN $tenants
  MATCH p = (e)(()-[r:REL WHERE r.type IN $procedural AND r.tenant IN $tenants AND NOT coalesce(r.flagged, false)
                     AND coalesce(r.trust, 0.0) >= $floor]->(x:Entity WHERE x.tenant IN $tenants)){1,4}(end)
  WITH p, r
  LIMIT $chain_fetch
  RETURN collect({names: [n IN nodes(p) | n.name], types: [q IN r | q.type], ids: [q IN r | q.id],
                  trusts: [q IN r | q.trust]}) AS chains
}
RETURN versions, facts, chains
"""


@dataclass
class Cached:
    version: int  # the tenant's graph version when last read
    lex: int  # its lexicon counter then: entities stamped after it are not in `lexicon`
    epoch: str | None
    lexicon: Lexicon


class Retriever:
    def __init__(self, db: GraphDB, max_cached_tenants: int = 256) -> None:
        self.db = db
        self._lexicons: OrderedDict[str, Cached] = OrderedDict()
        self._seen: OrderedDict[str, int] = OrderedDict()  # each tenant's graph version as last read from Neo4j
        self.max_cached = max_cached_tenants

    def seen(self, tenants: list[str]) -> dict[str, int] | None:
        """The tenants' graph versions as this process last read them (None: one of them never read). Only a guess
        of the current ones: a context built on them is checked against the versions its own query reads."""
        if not all(t in self._seen for t in tenants):
            return None
        return {t: self._seen[t] for t in tenants}

    def saw(self, versions: dict[str, int]) -> None:
        for tenant, version in versions.items():
            self._seen[tenant] = version
            self._seen.move_to_end(tenant)
        while len(self._seen) > self.max_cached:
            self._seen.popitem(last=False)

    async def lexicon(self, tenant: str, version: int) -> Lexicon:
        """The tenant's lexicon, read again only when the tenant's graph version moved: the entities written since,
        or all of them when that is not enough (the module's docstring)."""
        cached = self._lexicons.get(tenant)
        if cached is not None and cached.version == version:
            self._lexicons.move_to_end(tenant)
            return cached.lexicon
        # an older version than the cached one is a request that read it before another one moved it, unless the
        # version node was deleted: then the epoch is gone too (a lexicon never stamped only goes forward)
        if cached is not None and (version > cached.version or cached.epoch is not None):
            [row] = await self.db.read(LEXICON_SINCE, tenant=tenant, since=cached.lex)
            if row["epoch"] == cached.epoch and row["lex"] >= cached.lex \
                    and cached.lexicon.update(row["entities"], tenant):
                cached.version, cached.lex = max(version, cached.version), max(row["lex"], cached.lex)
                self._lexicons.move_to_end(tenant)
                return cached.lexicon
        [row] = await self.db.read(LEXICON, tenant=tenant)
        lexicon = Lexicon.build(row["entities"], tenant)
        self._lexicons[tenant] = Cached(version, row["lex"], row["epoch"], lexicon)
        self._lexicons.move_to_end(tenant)
        while len(self._lexicons) > self.max_cached:
            self._lexicons.popitem(last=False)
        return lexicon

    async def context(self, uids: list[str], tenants: list[str], floor: float, fetch: int,
                      chain_fetch: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, int] | None]:
        """Facts (at most `fetch`), requirement chains (at most `chain_fetch`; 0: chains are switched off,
        MOE_GRAPH_MAX_CHAINS=0) around the asked-about entities, and the tenants' graph versions read with them;
        no read without an entity (versions None)."""
        if not uids:
            return [], [], None
        [row] = await self.db.read(CONTEXT, uids=uids, tenants=tenants, floor=floor, fetch=fetch,
                                   chain_fetch=max(chain_fetch, 0), procedural=list(PROCEDURAL_TYPES))
        versions = {str(tenant): int(n) for tenant, n in row["versions"]}
        self.saw(versions)
        return row["facts"], row["chains"], versions
