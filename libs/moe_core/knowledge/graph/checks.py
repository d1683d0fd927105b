"""The checks before a writer learns many triples at once (graph-ingest: an answer's triples), one query each for
all of them: the entities their names resolve to, the relations that contradict each, and each one's blast radius.

They give what GraphStore.resolve, .conflicts and .reach give for one triple at a time, including the triples the
same batch writes before it: a name an earlier triple creates resolves to the entity it creates (`created`), and
the reach of a triple counts the relations the batch writes before it (`edges`, passed as parameters: the query
walks them beside the stored ones). Values only ever travel as parameters."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from moe_core.knowledge.graph.driver import GraphDB
from moe_core.knowledge.graph.names import entity_uid, normalize
from moe_core.knowledge.graph.vocab import visible_tenants

# store.RESOLVE_ENTITY for many keys: the tenant's own entity before the shared one, a name before an alias. A name
# through the (tenant, key) index, an alias through its alias node's (tenant, key) index (graph.alias_nodes): db hits
# grow with the keys asked, not with the entities the tenant sees (issue 52: a pass over the visible entities before)
RESOLVE_MANY = """
CALL () {
  UNWIND $keys AS key
  MATCH (e:Entity {key: key}) WHERE e.tenant IN $tenants
  RETURN key, e, 0 AS by
  UNION
  UNWIND $keys AS key
  MATCH (a:AliasKey {key: key})-[:ALIAS_OF]->(e:Entity) WHERE a.tenant IN $tenants AND e.tenant IN $tenants
  RETURN key, e, 1 AS by
}
WITH key, e ORDER BY key, CASE WHEN e.tenant = $tenant THEN 0 ELSE 1 END, by, e.uid
RETURN key, head(collect(e.uid)) AS uid
"""

# RESOLVE_MANY, then the tenant's version (measure.VERSION) and, unless it is `$counted` (the version the tenant's size
# was last counted at by this writer: measure.Sizes), its size as measure.TENANT_SIZE counts it, in one read (keep them
# in step): a writer's names and its "before" count in one round trip, the count O(the tenant) only when the tenant
# changed since that count (issue 52)
RESOLVE_MANY_COUNTED = """
CALL () {
  CALL () {
    UNWIND $keys AS key
    MATCH (e:Entity {key: key}) WHERE e.tenant IN $tenants
    RETURN key, e, 0 AS by
    UNION
    UNWIND $keys AS key
    MATCH (a:AliasKey {key: key})-[:ALIAS_OF]->(e:Entity) WHERE a.tenant IN $tenants AND e.tenant IN $tenants
    RETURN key, e, 1 AS by
  }
  WITH key, e ORDER BY key, CASE WHEN e.tenant = $tenant THEN 0 ELSE 1 END, by, e.uid
  RETURN key, head(collect(e.uid)) AS uid
}
WITH collect([key, uid]) AS found
OPTIONAL MATCH (v:GraphVersion {tenant: $tenant})
WITH found, [v.n, v.lex, v.epoch] AS version
OPTIONAL CALL (version) {
  WITH version WHERE NOT coalesce(version = $counted, false)
  CALL () { MATCH (e:Entity {tenant: $tenant}) RETURN count(e) AS entities }
  CALL () { MATCH ()-[r:REL {tenant: $tenant}]->() RETURN count(r) AS relations }
  RETURN entities, relations
}
RETURN found, version, entities, relations
"""

# store.FIND_CONFLICTS for many (subject, object) pairs
CONFLICTS_MANY = """
UNWIND $items AS item
MATCH (a:Entity {uid: item.subject})-[r:REL]->(b:Entity {uid: item.object})
WHERE r.type IN item.conflicting AND r.tenant IN $tenants
RETURN item.i AS i, r.id AS id, r.type AS type, r.source AS source, r.verified AS verified, r.trust AS trust,
       r.tenant AS tenant
"""

# store.REACH for many start sets: the distinct visible entities within two hops of an item's starts (the starts left
# out), over the stored relations and the item's `edges` (pairs of entity uids the batch writes before it)
REACH_MANY = """
UNWIND $items AS item
CALL (item) {
  OPTIONAL MATCH (e:Entity WHERE e.uid IN item.starts)-[r:REL WHERE r.tenant IN $tenants]-(x:Entity)
  WHERE x.tenant IN $tenants
  WITH item, collect(DISTINCT x.uid) AS near
  WITH item, near + [p IN item.edges WHERE p[0] IN item.starts | p[1]]
                  + [p IN item.edges WHERE p[1] IN item.starts | p[0]] AS hop1
  OPTIONAL MATCH (y:Entity WHERE y.uid IN hop1)-[r2:REL WHERE r2.tenant IN $tenants]-(z:Entity)
  WHERE z.tenant IN $tenants
  WITH item, hop1, collect(DISTINCT z.uid) AS far
  UNWIND hop1 + far + [p IN item.edges WHERE p[0] IN hop1 | p[1]]
                    + [p IN item.edges WHERE p[1] IN hop1 | p[0]] AS u
  WITH item, u WHERE NOT u IN item.starts
  RETURN count(DISTINCT u) AS reach
}
RETURN item.i AS i, reach
"""


@dataclass(frozen=True)
class Resolved:
    """The entity uids a batch's names resolve to before it writes anything (by normalised key)."""

    tenant: str
    uids: dict[str, str]

    def uid(self, name: str, created: Collection[str] = ()) -> str | None:
        """The entity `name` resolves to, once the batch has created the entities of the keys `created`."""
        key = normalize(name)
        found = self.uids.get(key)
        if found is None and key in created:
            return entity_uid(self.tenant, key)
        return found

    def written_uid(self, name: str) -> str:
        """The entity a write of `name` uses: the one it resolves to, else the one the write creates."""
        return self.uids.get(normalize(name)) or entity_uid(self.tenant, normalize(name))


async def resolve_names(db: GraphDB, tenant: str, names: list[str]) -> Resolved:
    keys = sorted({normalize(n) for n in names})
    rows = await db.read(RESOLVE_MANY, keys=keys, tenants=visible_tenants(tenant), tenant=tenant) if keys else []
    return Resolved(tenant, {r["key"]: r["uid"] for r in rows if r["uid"] is not None})


async def reach_of(db: GraphDB, tenant: str, items: list[tuple[list[str], list[list[str]]]]) -> list[int]:
    """Each item's blast radius: (its start uids, the relations written before it as [uid, uid] pairs)."""
    asked = [{"i": i, "starts": starts, "edges": edges} for i, (starts, edges) in enumerate(items) if starts]
    out = [0] * len(items)
    if asked:
        for row in await db.read(REACH_MANY, items=asked, tenants=visible_tenants(tenant)):
            out[row["i"]] = int(row["reach"])
    return out
