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
# the facts newer than the versions they are stored under (rebuilt at the next request), never older. With each
# version come its lexicon counter and epoch and the entities stamped after `$since[t]` (the counter of the tenant's
# cached lexicon), as LEXICON_SINCE reads them: after a learned answer moved the version, the lexicon is brought up to
# date without a read of its own (issue 52: one statement a request). The facts come ranked and limited as
# core.rank_facts ranks them (two hops away, IS_A is left out there and here): only `$limit` rows travel. The second
# hop is read from the entities the first reached, each once, and drops an IS_A relation on its type before anything
# else of it is read: a class every learned entity is filed under (gap-healer's classifications) is a hub, and the
# query read five to six properties of each of its members' relations on every question about one of them (issue 52;
# tests/graph/graph_rag/test_context_class_members.py). A relation reached at both hops counts at the first.
CONTEXT = """
CALL () {
  UNWIND $tenants AS t
  OPTIONAL MATCH (v:GraphVersion {tenant: t})
  RETURN collect([t, coalesce(v.n, 0), coalesce(v.lex, 0), v.epoch]) AS versions
}
CALL () {
  UNWIND keys($since) AS t
  MATCH (e:Entity)
  WHERE e.tenant = t AND e.lex > toInteger($since[t])  // typed: an index seek, not a scan
  RETURN collect([t, e.uid, e.name, e.key, e.alias_keys]) AS entities
}
CALL () {
  MATCH (e:Entity)
  WHERE e.uid IN $uids AND e.tenant IN $tenants
  MATCH (e)-[r:REL WHERE r.tenant IN $tenants AND NOT coalesce(r.flagged, false)
             AND coalesce(r.trust, 0.0) >= $floor]-(x:Entity WHERE x.tenant IN $tenants)
  WITH collect(r) AS near, collect(DISTINCT x) AS middle
  CALL (middle) {
    UNWIND middle AS x
    MATCH (x)-[r:REL]-(y:Entity)  // r may be a first hop's too (a path would not take it twice): hop 1 stands
    WHERE CASE WHEN r.type = 'IS_A' THEN false  // the type first: Neo4j orders an AND's parts itself, the type last
               ELSE r.tenant IN $tenants AND NOT coalesce(r.flagged, false) AND coalesce(r.trust, 0.0) >= $floor
                    AND y.tenant IN $tenants END
    RETURN collect(r) AS far
  }
  UNWIND [rel IN near | [rel, 1]] + [rel IN far | [rel, 2]] AS reached
  WITH reached[0] AS rel, min(reached[1]) AS hop
  WITH rel, hop, startNode(rel) AS a, endNode(rel) AS b
  ORDER BY CASE WHEN a.uid IN $uids THEN 1 ELSE 0 END + CASE WHEN b.uid IN $uids THEN 1 ELSE 0 END DESC, hop,
           rel.type = 'IS_A', coalesce(rel.trust, 0.0) DESC, rel.id
  LIMIT $limit
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
RETURN versions, entities, facts, chains
"""


@dataclass(frozen=True)
class Since:
    """What a context query read of a tenant's lexicon: its version, counter and epoch, and the entities stamped
    after `since` (the counter of the cached lexicon it was asked for)."""
    version: int
    since: int
    lex: int
    epoch: str | None
    entities: list[dict[str, Any]]


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
        self._since: dict[str, Since] = {}  # each cached lexicon's entities read by the last context query
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
            read = self._since.pop(tenant, None)
            if read is None or read.version != version or not read.since <= cached.lex <= read.lex:
                [row] = await self.db.read(LEXICON_SINCE, tenant=tenant, since=cached.lex)
                read = Since(version, cached.lex, row["lex"], row["epoch"], row["entities"])
            if read.epoch == cached.epoch and read.lex >= cached.lex \
                    and cached.lexicon.update(read.entities, tenant):
                cached.version, cached.lex = max(version, cached.version), max(read.lex, cached.lex)
                self._lexicons.move_to_end(tenant)
                return cached.lexicon
        [row] = await self.db.read(LEXICON, tenant=tenant)
        lexicon = Lexicon.build(row["entities"], tenant)
        self._lexicons[tenant] = Cached(version, row["lex"], row["epoch"], lexicon)
        self._lexicons.move_to_end(tenant)
        while len(self._lexicons) > self.max_cached:
            self._since.pop(self._lexicons.popitem(last=False)[0], None)
        return lexicon

    async def context(self, uids: list[str], tenants: list[str], floor: float, limit: int, chain_fetch: int,
                      versions_known: bool = False
                      ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, int] | None]:
        """Facts (the first `limit` as core.rank_facts ranks them), requirement chains (at most `chain_fetch`; 0:
        chains are switched off, MOE_GRAPH_MAX_CHAINS=0) around the asked-about entities, and the tenants' graph
        versions read with them (with what changed in the cached lexicons: `lexicon` reads nothing more). Without
        an entity nothing is read when the caller knows the current versions already (versions None)."""
        if not uids and versions_known:
            return [], [], None
        since = {t: c.lex for t in tenants if (c := self._lexicons.get(t)) is not None}
        [row] = await self.db.read(CONTEXT, uids=uids, tenants=tenants, floor=floor, limit=limit,
                                   chain_fetch=max(chain_fetch, 0) if uids else 0,
                                   procedural=list(PROCEDURAL_TYPES), since=since)
        versions = {}
        for tenant, n, lex, epoch in row["versions"]:
            versions[str(tenant)] = int(n)
            if tenant in since:
                entities = [{"uid": uid, "name": name, "key": key, "alias_keys": aliases}
                            for t, uid, name, key, aliases in row["entities"] if t == tenant]
                self._since[tenant] = Since(int(n), since[tenant], int(lex), epoch, entities)
        self.saw(versions)
        return row["facts"], row["chains"], versions
