"""graph-rag's context query does not weigh the other members of an asked entity's class (issue 52): two hops away
an IS_A relation is left out of the context (graph_rag.retrieval.CONTEXT), so the query drops it on its type alone,
before reading whether it is the tenant's, flagged or trusted, or its far end. A class every learned entity is filed
under (gap-healer's classifications) is a hub: the query read five to six properties of each of its relations for
every question about one of its members. Counted in Neo4j's db hits (PROFILE), per member of the class: a count,
not a timing (real Neo4j)."""

from __future__ import annotations

from typing import Any

import pytest

from graph_rag.retrieval import CONTEXT, Retriever
from moe_core.knowledge.graph import GraphDB, GraphStore, Provenance, Triple, visible_tenants
from moe_core.knowledge.graph.names import normalize

pytestmark = pytest.mark.infra

UIDS = "MATCH (e:Entity) WHERE e.tenant = $tenant AND e.key IN $keys RETURN e.uid AS uid"


def _hits(plan: Any) -> int:
    return int(plan.get("dbHits", 0)) + sum(_hits(child) for child in plan.get("children", []))


async def _context_hits(db: GraphDB, tenant: str) -> tuple[int, list[dict[str, Any]]]:
    """The db hits of the context query for a question about Velmont Ore, and the facts it returned."""
    uids = [r["uid"] for r in await db.read(UIDS, tenant=tenant, keys=[normalize("Velmont Ore")])]
    asked: list[dict[str, Any]] = []
    real = db.read

    async def noted(query: Any, **params: Any) -> list[dict[str, Any]]:
        if query == CONTEXT:
            asked.append(params)
        return await real(query, **params)

    db.read = noted  # type: ignore[method-assign]
    try:
        facts, _, _ = await Retriever(db).context(uids, visible_tenants(tenant), 0.0, 10, 0)
    finally:
        del db.read  # the class's again (a shared fixture: other tests patch GraphDB.read)
    [params] = asked
    async with db.driver.session(database=db.database) as session:
        summary = await (await session.run("PROFILE " + CONTEXT, params)).consume()
    return _hits(summary.profile or {}), facts


async def test_the_other_members_of_an_asked_entitys_class_cost_a_few_db_hits_each(graph_db: GraphDB,
                                                                                  tenant: str) -> None:
    store = GraphStore(graph_db)

    async def learn(subject: str, relation: str, obj: str, origin: str) -> None:
        await store.write_triple(Triple(subject=subject, relation=relation, object=obj, confidence=0.9),
                                 Provenance(tenant=tenant, source="extracted", origin=origin))

    await learn("Velmont Ore", "IS_A", "Brakish Mineral", "a")
    await learn("Velmont Ore", "PART_OF", "Dunmere Rock", "b")
    await learn("Brakish Mineral", "PART_OF", "Halvard Ridge", "c")  # two hops away, not IS_A: in the context
    for i in range(10):
        await learn(f"Brakish Sibling {i}", "IS_A", "Brakish Mineral", f"s{i}")
    few, facts_few = await _context_hits(graph_db, tenant)
    for i in range(10, 50):
        await learn(f"Brakish Sibling {i}", "IS_A", "Brakish Mineral", f"s{i}")
    many, facts_many = await _context_hits(graph_db, tenant)
    # the same context: the class's members are left out, its other relation is in it
    assert facts_few == facts_many
    assert {(f["subject"], f["type"], f["object"]) for f in facts_many} == {
        ("Velmont Ore", "IS_A", "Brakish Mineral"), ("Velmont Ore", "PART_OF", "Dunmere Rock"),
        ("Brakish Mineral", "PART_OF", "Halvard Ridge")}
    # each further member: its relation read, and its type (before: ~6, its tenant, flag, trust and far end too)
    assert (many - few) / 40 <= 2.5, (few, many)
