"""One node per alias key of an entity, `(:AliasKey {uid, key, tenant})-[:ALIAS_OF]->(:Entity)`, so that a name is
resolved through an index: Neo4j 5.26 indexes a list property (`alias_keys`) only as a whole value, so
`k IN e.alias_keys` filtered every entity a tenant sees (the 327 shared ones and its own) on every lookup, and a
full-text index on the list made every write of an entity cost about 8 ms more of Neo4j's CPU (issue 52).

An entity's `alias_keys` stay the truth; the nodes follow them. Every statement that sets `alias_keys` ends the
entity's part with SYNC_ALIASES written out (Cypher is not built from text), every statement that deletes an entity
deletes its alias nodes, and a lookup goes through the ALIAS_OF relationship, so an alias node whose entity is
gone resolves nothing (tests/graph/house/test_alias_nodes.py keeps the statements in step). At start, every graph
service makes the nodes of a graph written before them (or restored from a backup without them) match the
entities' `alias_keys`, and removes the nodes left without an entity (`ensure_alias_nodes`, idempotent)."""

from __future__ import annotations

import logging

from moe_core.knowledge.graph.driver import GraphDB

log = logging.getLogger(__name__)

# The alias nodes of the entity `e` made to match its alias_keys (and its tenant): the ones no longer named deleted,
# the missing ones made (MERGE under the unique constraint on (uid, key): concurrent writers make one node).
SYNC_ALIASES = """
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
"""

# The entities whose alias nodes differ from their alias_keys, synced (SYNC_ALIASES), then the alias nodes left
# without an entity removed: nothing is written when all are in step.
ENSURE = """
CALL () {
  MATCH (e:Entity)
  WHERE any(k IN coalesce(e.alias_keys, []) WHERE NOT EXISTS { (e)<-[:ALIAS_OF]-(:AliasKey {key: k}) })
     OR EXISTS { (e)<-[:ALIAS_OF]-(o:AliasKey) WHERE NOT o.key IN coalesce(e.alias_keys, []) OR o.tenant <> e.tenant }
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
  RETURN count(e) AS synced
}
CALL () {
  MATCH (a:AliasKey) WHERE NOT (a)-[:ALIAS_OF]->(:Entity)
  DETACH DELETE a
  RETURN count(a) AS orphans
}
RETURN synced, orphans
"""


async def ensure_alias_nodes(db: GraphDB) -> dict[str, int]:
    """Make every entity's alias nodes match its alias_keys; remove the ones without an entity (idempotent)."""
    [row] = await db.write(ENSURE)
    if row["synced"] or row["orphans"]:
        log.info("alias nodes: %d entities synced, %d orphaned alias nodes removed", row["synced"], row["orphans"])
    return {"synced": int(row["synced"]), "orphans": int(row["orphans"])}
