"""A canonical dump of the knowledge a range of events produced, comparable across graph namespaces: the
relations (with their endpoints by normalised key) and syntheses asserted by the range's answers, with the
rebuild's scratch tenant mapped back to the live one. The base ontology (the shared tenant) is never dumped:
an endpoint in it is marked `shared`."""

from __future__ import annotations

from moe_core.knowledge.graph import SHARED_TENANT, GraphDB

RELATIONS = """
MATCH (a:Entity)-[r:REL]->(b:Entity)
WHERE r.tenant IN $tenants AND any(o IN coalesce(r.asserted_by, []) WHERE o IN $origins)
RETURN r.tenant AS tenant, a.key AS subject, a.tenant AS subject_tenant, a.name AS subject_name,
       r.type AS type, b.key AS object, b.tenant AS object_tenant, b.name AS object_name, r.source AS source,
       r.domain AS domain, r.confidence AS confidence, r.verified AS verified, r.flagged AS flagged,
       r.asserted_by AS asserted_by, r.expert AS expert, r.model AS model, r.response_id AS response_id
"""

SYNTHESES = """
MATCH (s:Synthesis)
WHERE s.tenant IN $tenants AND s.response_id IN $origins
OPTIONAL MATCH (s)-[:ABOUT]->(e:Entity)
RETURN s.tenant AS tenant, s.response_id AS response_id, s.text AS text, s.domain AS domain,
       s.expert AS expert, s.model AS model, s.insight_type AS insight_type, collect(e.key) AS about
"""

DROP_TENANT = """
CALL () { MATCH ()-[r:REL {tenant: $tenant}]->() DELETE r }
CALL () { MATCH (e:Entity {tenant: $tenant}) DETACH DELETE e }
CALL () { MATCH (a:AliasKey {tenant: $tenant}) DETACH DELETE a }
CALL () { MATCH (s:Synthesis {tenant: $tenant}) DETACH DELETE s }
CALL () { MATCH (v:GraphVersion {tenant: $tenant}) DELETE v }
"""


def _end(tenant: str | None) -> str:
    return "shared" if tenant == SHARED_TENANT else "own"


async def dump(db: GraphDB, tenants: dict[str, str], origins: set[str]) -> set[str]:
    """Canonical lines of what `origins` produced in the graph tenants `tenants` (graph tenant -> the live
    tenant it stands for)."""
    names, wanted = list(tenants), sorted(origins)
    lines: set[str] = set()
    for r in await db.read(RELATIONS, tenants=names, origins=wanted):
        by = ",".join(sorted(o for o in r["asserted_by"] or [] if o in origins))
        lines.add(f"relation {tenants[r['tenant']]} | {r['subject']} ({_end(r['subject_tenant'])}) -{r['type']}-> "
                  f"{r['object']} ({_end(r['object_tenant'])}) | source={r['source']} domain={r['domain']} "
                  f"confidence={float(r['confidence'] or 0):.6f} verified={bool(r['verified'])} "
                  f"flagged={bool(r['flagged'])} expert={r['expert']} model={r['model']} asserted_by={by}")
        for end in ("subject", "object"):
            if r[f"{end}_tenant"] != SHARED_TENANT:
                lines.add(f"entity {tenants[r['tenant']]} | {r[end]} | name={r[f'{end}_name']}")
    for s in await db.read(SYNTHESES, tenants=names, origins=wanted):
        about = ",".join(sorted(s["about"]))
        lines.add(f"synthesis {tenants[s['tenant']]} | {s['response_id']} | domain={s['domain']} "
                  f"expert={s['expert']} model={s['model']} type={s['insight_type']} about={about} "
                  f"text={s['text']!r}")
    return lines


async def drop_tenant(db: GraphDB, tenant: str) -> None:
    """Remove a scratch tenant's nodes and relations (never called with a live tenant)."""
    await db.write(DROP_TENANT, tenant=tenant)
