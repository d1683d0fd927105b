"""graph-rag's context query ranks and limits the facts in Neo4j (graph_rag.retrieval.CONTEXT) exactly as
core.rank_facts ranks every fact within two hops (what it ranked before, fetching five times the limit): the same
facts in the same order, so the same context text, at every limit (real Neo4j)."""

from __future__ import annotations

from typing import Any

import pytest

from graph_rag import core
from graph_rag.retrieval import Retriever
from moe_core.knowledge.graph import GraphDB, GraphStore, Provenance, Triple, visible_tenants
from moe_core.knowledge.graph.names import normalize

pytestmark = pytest.mark.infra

# Every relation within two hops of the asked entities, unranked and unlimited: the candidates core.rank_facts ranks
EVERY_FACT = """
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
"""
UIDS = "MATCH (e:Entity) WHERE e.tenant = $tenant AND e.key IN $keys RETURN e.uid AS uid"


async def test_the_facts_come_ranked_and_limited_as_rank_facts_ranks_them(graph_db: GraphDB, tenant: str) -> None:
    store = GraphStore(graph_db)
    triples = [("Velmont Ore", "INTERACTS_WITH", "Castrel Salt", 0.9),  # between the two asked entities
               ("Velmont Ore", "IS_A", "Brakish Mineral", 0.9), ("Velmont Ore", "PART_OF", "Dunmere Rock", 0.6),
               ("Castrel Salt", "CAUSES", "Pellow Rust", 0.9), ("Castrel Salt", "USES", "Orrin Brine", 0.9),
               ("Dunmere Rock", "PART_OF", "Halvard Ridge", 0.8), ("Pellow Rust", "AFFECTS", "Tamsin Iron", 0.5),
               # two hops away: members of the asked entity's class (IS_A, left out) and facts of equal trust
               *((f"Brakish Sibling {i}", "IS_A", "Brakish Mineral", 0.9) for i in range(12)),
               *(("Orrin Brine", "RELATED_TO", f"Orrin Pool {i}", 0.9) for i in range(6))]
    for i, (subject, relation, obj, confidence) in enumerate(triples):
        await store.write_triple(Triple(subject=subject, relation=relation, object=obj, confidence=confidence),
                                 Provenance(tenant=tenant, source="extracted", origin=f"k{i}"))
    tenants = visible_tenants(tenant)
    uids = [r["uid"] for r in await graph_db.read(UIDS, tenant=tenant,
                                                  keys=[normalize("Velmont Ore"), normalize("Castrel Salt")])]
    every = await graph_db.read(EVERY_FACT, uids=uids, tenants=tenants, floor=0.0)
    assert len(every) == len(triples) and sum(r["hop"] > 1 and r["type"] == "IS_A" for r in every) == 12
    retriever = Retriever(graph_db)
    kept = len(core.rank_facts(every, set(uids), len(every)))
    for limit in range(1, kept + 2):
        facts, _, _ = await retriever.context(uids, tenants, 0.0, limit, 0)
        expected: list[dict[str, Any]] = core.rank_facts(every, set(uids), limit)
        assert facts == expected, limit
        assert core.content(facts, [], []) == core.content(expected, [], [])
