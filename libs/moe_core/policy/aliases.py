"""An imported entity's aliases and name may not take over a name the tenant already sees. A tenant's own entity
is resolved before the shared ontology's (moe_core.knowledge.graph.bundles_graph.resolve_many), so an import of
`Qx-7` with the alias `Ibuprofen` would make "ibuprofen" mean Qx-7 for the tenant: its questions, its answers'
graph facts, its four-eyes counts. So an alias whose key (folded for look-alikes, moe_core.policy.domains.keys_of)
names another entity the tenant sees (its own or the shared ontology's, by key or alias), or another entity of
the same bundle, is refused, and so is a name that only a look-alike letter tells from such an entity's
(`Ibuprofen` written with a Cyrillic I, U+0406). An entity re-imported with its own aliases is the same entity:
no conflict."""

from __future__ import annotations

from dataclasses import dataclass

from moe_core.knowledge.graph import SHARED_TENANT, GraphDB, visible_tenants
from moe_core.knowledge.graph.bundles import Bundle
from moe_core.knowledge.graph.names import normalize
from moe_core.policy.domains import key_of, keys_of

# The visible entities named by one of the keys, by name or alias (through their alias nodes,
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
RETURN e.name AS name, e.tenant AS tenant, e.key AS key, e.alias_keys AS alias_keys
ORDER BY CASE WHEN e.tenant = $tenant THEN 0 ELSE 1 END, e.name
"""


@dataclass(frozen=True)
class Conflict:
    entity: str  # the bundle's entity
    alias: str  # its alias (or its name, for a look-alike name)
    owner: str  # the entity that name already belongs to
    where: str  # "the shared ontology", "the tenant's graph", "this bundle"

    def message(self) -> str:
        what = (f"the name {self.entity!r} is a look-alike of" if self.alias == self.entity
                else f"the alias {self.alias!r} of {self.entity!r} names")
        return (f"{what} {self.owner}, an entity the tenant already sees ({self.where}): an import may not take "
                f"over a name; import facts about {self.owner} under its own name, or drop the alias")


async def conflicts(db: GraphDB, tenant: str, bundle: Bundle) -> list[Conflict]:
    """Every alias (and look-alike name) of the bundle that names another entity; empty: none."""
    own = {normalize(e.name): e.name for e in bundle.entities}
    claims: list[tuple[str, str, set[str], set[str]]] = []  # (entity, alias, alias keys, the entity's own keys)
    for entity in bundle.entities:
        mine = keys_of(entity.name)
        claims += [(entity.name, alias, keys_of(alias) - mine, mine) for alias in entity.aliases]
        if key_of(entity.name) != normalize(entity.name):  # a look-alike letter in the name itself
            claims.append((entity.name, entity.name, {key_of(entity.name)}, {normalize(entity.name)}))
    wanted = sorted({k for _, _, keys, _ in claims for k in keys})
    rows = await db.read(OWNERS, tenants=visible_tenants(tenant), tenant=tenant, keys=wanted) if wanted else []
    found: list[Conflict] = []
    for name, alias, keys, mine in claims:
        inside = [own[k] for k in sorted(keys & own.keys()) if k not in mine]
        if inside:
            found.append(Conflict(name, alias, inside[0], "this bundle"))
            continue
        for row in rows:
            names = {row["key"], *(row["alias_keys"] or [])}
            if names & keys and row["key"] not in mine:
                where = "the shared ontology" if row["tenant"] == SHARED_TENANT else "the tenant's graph"
                found.append(Conflict(name, alias, str(row["name"]), where))
                break
    return found
