"""A classification's aliases, never taken from another entity: an alias whose normalized key already names
another entity the tenant sees (moe_core.knowledge.graph.visible_tenants: its key or one of its alias_keys) is dropped,
and so is one that only a look-alike letter tells from such a name (folded per UTS #39, moe_core.runtime.normalise).
The
owners are read first (to say which entity holds a dropped alias) and checked again in the writing statement, so
an alias claimed meanwhile is not taken either."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from moe_core.knowledge.graph import GraphDB, visible_tenants
from moe_core.knowledge.graph.names import normalize
from moe_core.policy.domains import keys_of

# The visible entities (but `uid`) named by one of the keys, by name or alias (through their alias nodes,
# moe_core.knowledge.graph.alias_nodes)
OWNERS = """
CALL () {
  UNWIND $keys AS key
  MATCH (e:Entity {key: key}) WHERE e.tenant IN $tenants
  RETURN e
  UNION
  UNWIND $keys AS key
  MATCH (a:AliasKey {key: key})-[:ALIAS_OF]->(e:Entity) WHERE a.tenant IN $tenants AND e.tenant IN $tenants
  RETURN e
}
WITH e WHERE e.uid <> $uid
RETURN e.name AS name, e.tenant AS tenant, e.key AS key, e.alias_keys AS alias_keys
ORDER BY CASE WHEN e.tenant = $tenant THEN 0 ELSE 1 END, e.name
"""

# Sets the aliases of a gap-healer entity that no other visible entity names (by key or alias), in one statement,
# with its alias nodes (moe_core.knowledge.graph.alias_nodes.SYNC_ALIASES). An alias node's tenant is its entity's:
# asked of the node too, it is found through the (tenant, key) index, not by a scan of every alias node (issue 52).
SET_ALIASES = """
MATCH (e:Entity {uid: $uid})
WHERE e.tenant = $tenant AND e.source = 'gap_healer'
UNWIND $keys AS k
WITH e, k, COUNT { MATCH (o:Entity {key: k}) WHERE o.tenant IN $tenants AND o.uid <> e.uid }
         + COUNT { MATCH (a:AliasKey {key: k})-[:ALIAS_OF]->(o:Entity)
                   WHERE a.tenant IN $tenants AND o.tenant IN $tenants AND o.uid <> e.uid }
         AS owners
WITH e, [x IN collect(CASE WHEN owners = 0 THEN k END) WHERE x IS NOT NULL] AS free
WITH e, free, [a IN $aliases WHERE all(x IN a.keys WHERE x IN free)] AS kept
SET e.aliases = [a IN kept | a.name], e.alias_keys = [a IN kept | a.key]
WITH e, free
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
RETURN free
"""


@dataclass(frozen=True)
class Aliases:
    kept: list[str]
    dropped: list[dict[str, Any]] = field(default_factory=list)  # {alias, reason, owner, owner_tenant}


def distinct(aliases: list[str]) -> list[dict[str, Any]]:
    """The proposed aliases with their key and every key they may be known by (as written and folded for
    look-alikes, moe_core.policy.domains.keys_of: `Kubernetes` written with a Cyrillic e, U+0435, names
    Kubernetes), the first of each key."""
    seen: dict[str, str] = {}
    for alias in aliases:
        seen.setdefault(normalize(alias), alias)
    return [{"name": name, "key": key, "keys": sorted(keys_of(name) | {key})} for key, name in seen.items() if key]


async def apply_aliases(db: GraphDB, tenant: str, uid: str, proposed: list[str]) -> Aliases:
    """Give the gap-healer's entity `uid` the proposed aliases no other visible entity names."""
    wanted = distinct(proposed)
    if not wanted:
        return Aliases([])
    tenants, keys = visible_tenants(tenant), sorted({k for a in wanted for k in a["keys"]})
    owners: dict[str, dict[str, Any]] = {}
    for row in await db.read(OWNERS, tenants=tenants, tenant=tenant, uid=uid, keys=keys):
        for key in {row["key"], *(row["alias_keys"] or [])} & set(keys):
            owners.setdefault(key, row)
    rows = await db.write(SET_ALIASES, uid=uid, tenant=tenant, tenants=tenants, keys=keys, aliases=wanted)
    if not rows:  # the term resolved meanwhile to an entity the gap-healer did not make: its aliases stay
        return Aliases([], [{"alias": a["name"], "reason": "the entity is not the gap-healer's", "owner": None,
                             "owner_tenant": None} for a in wanted])
    free = set(rows[0]["free"])
    kept = [a for a in wanted if set(a["keys"]) <= free]
    dropped = []
    for alias in wanted:
        if alias in kept:
            continue
        owner = next((owners[k] for k in alias["keys"] if k in owners), None)
        dropped.append({"alias": alias["name"], "reason": "names another entity" if owner else
                        "named another entity when written",
                        "owner": owner["name"] if owner else None, "owner_tenant": owner["tenant"] if owner else None})
    return Aliases([a["name"] for a in kept], dropped)
