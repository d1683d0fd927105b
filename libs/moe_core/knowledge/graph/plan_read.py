"""The checks of an answer's triples in one read (graph-ingest's plan; issue 52: three reads, each a round trip and a
statement's overhead in Neo4j, before): their names resolved and the tenant's size before (checks.RESOLVE_MANY_COUNTED),
the relations that contradict each (checks.CONFLICTS_MANY), and each one's blast radius (checks.REACH_MANY) as it is
when every triple before it is written, the outcome of every answer in which no triple is rejected or held. Names
travel as keys and become uids in the query: a key the resolution found is its entity's uid, any other the uid the
write gives it (`$new`, names.entity_uid), as Resolved.uid and .written_uid give them. Cypher may not be built from
text: the parts are written out again; tests/graph/moe_core/knowledge/test_plan_read.py keeps them in step. With them,
when asked (`domain_keys`), the entities the write policy resolves the triples' domains by (moe_core.policy.domains
.KNOWN_DOMAINS: one round trip less per answer)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from moe_core.knowledge.graph.checks import Resolved
from moe_core.knowledge.graph.driver import GraphDB
from moe_core.knowledge.graph.measure import Counted, Sizes, size_of
from moe_core.knowledge.graph.model import Triple
from moe_core.knowledge.graph.names import entity_uid, normalize
from moe_core.knowledge.graph.vocab import conflicting_types, visible_tenants

PLAN_READ = """
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
WITH found, version, entities, relations
CALL (found) {
  UNWIND $conflicts AS pair
  WITH pair.i AS i, {subject: [x IN found WHERE x[0] = pair.subject | x[1]][0],
                     object: [x IN found WHERE x[0] = pair.object | x[1]][0], conflicting: pair.conflicting} AS item
  OPTIONAL CALL (item) {
    MATCH (a:Entity {uid: item.subject})-[r:REL]->(b:Entity {uid: item.object})
    WHERE r.type IN item.conflicting AND r.tenant IN $tenants
    RETURN r.id AS id, r.type AS type, r.source AS source, r.verified AS verified, r.trust AS trust,
           r.tenant AS tenant
  }
  WITH i, id, type, source, verified, trust, tenant WHERE id IS NOT NULL
  RETURN collect({i: i, id: id, type: type, source: source, verified: verified, trust: trust, tenant: tenant})
         AS conflicts
}
CALL (found) {
  UNWIND $reach AS spec
  WITH spec.i AS i,
       {starts: [k IN spec.keys WHERE k IN spec.earlier OR any(x IN found WHERE x[0] = k)
                 | coalesce([x IN found WHERE x[0] = k | x[1]][0], $new[k])],
        edges: [p IN spec.edges | [coalesce([x IN found WHERE x[0] = p[0] | x[1]][0], $new[p[0]]),
                                   coalesce([x IN found WHERE x[0] = p[1] | x[1]][0], $new[p[1]])]]} AS item
  WHERE size(item.starts) > 0
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
  RETURN collect([i, reach]) AS reaches
}
CALL () {
  CALL () {
    UNWIND $domain_keys AS key
    MATCH (e:Entity {key: key}) WHERE e.tenant IN $tenants
    RETURN e
    UNION
    UNWIND $domain_keys AS key
    MATCH (a:AliasKey {key: key})-[:ALIAS_OF]->(e:Entity) WHERE a.tenant IN $tenants AND e.tenant IN $tenants
    RETURN e
  }
  RETURN collect({key: e.key, aliases: e.alias_keys, domain: e.domain}) AS domains
}
RETURN found, version, entities, relations, conflicts, reaches, domains
"""


@dataclass(frozen=True)
class PlanRead:
    resolved: Resolved
    before: dict[str, int]  # the tenant's entities and relations before (measure.tenant_size)
    conflicts: list[list[dict[str, Any]]]  # each triple's stored contradicting relations (GraphStore.conflicts)
    reaches: list[int]  # each triple's reach, as checks.reach_of gives it when every triple before it is written
    domains: list[dict[str, Any]]  # KNOWN_DOMAINS' rows for `domain_keys` (moe_core.policy.domains.domains_by_key)
    counted: Counted | None = None  # `before` with the tenant's version it holds at (the write's `since`)


async def read_plan(db: GraphDB, tenant: str, triples: list[Triple], sizes: Sizes,
                    domain_keys: Collection[str] = ()) -> PlanRead:
    """The checks of `triples` in one read; the size counted there, or, while the tenant's version is the one `sizes`
    last counted it at, that count."""
    pairs = [(normalize(t.subject), normalize(t.object)) for t in triples]
    keys = sorted({k for pair in pairs for k in pair})
    conflicts = [{"i": i, "subject": s, "object": o, "conflicting": opposite}
                 for i, ((s, o), t) in enumerate(zip(pairs, triples, strict=True))
                 if (opposite := conflicting_types(t.relation))]
    reach = [{"i": j, "keys": list(pair), "earlier": sorted({k for p in pairs[:j] for k in p}),
              "edges": [list(p) for p in pairs[:j]]} for j, pair in enumerate(pairs)]
    known = sizes.last(tenant)
    [row] = await db.read(PLAN_READ, keys=keys, tenants=visible_tenants(tenant), tenant=tenant,
                          counted=known.version if known is not None else None, conflicts=conflicts, reach=reach,
                          new={k: entity_uid(tenant, k) for k in keys}, domain_keys=sorted(domain_keys))
    resolved = Resolved(tenant, {k: u for k, u in row["found"] if u is not None})
    carried = row["entities"] is None and known is not None  # the version is the one of the writer's last count
    before = dict(known.counts) if carried and known is not None else size_of(row)
    counted = known if carried else Counted(list(row["version"]), before)
    found: list[list[dict[str, Any]]] = [[] for _ in triples]
    for c in row["conflicts"]:
        found[c.pop("i")].append(c)
    reaches = [0] * len(triples)
    for i, n in row["reaches"]:
        reaches[i] = int(n)
    return PlanRead(resolved, before, found, reaches, row["domains"], counted)
