"""The shared graph code against the real Neo4j: idempotent seeding, MERGE with a version counter,
conflicts, blast radius, tenant isolation and what retrieval leaves out."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest

from graph_rag.app import GraphRag
from graph_rag.settings import GraphRagSettings
from moe_core.knowledge.graph import SHARED_TENANT, GraphDB, GraphStore, Provenance, Triple, ontology, reads
from moe_core.knowledge.graph.feedback import apply_feedback, recompute_trust
from moe_core.knowledge.graph.reach import reach_distribution
from moe_core.knowledge.graph.trust import DAY_S, TrustPolicy
from moe_core.runtime.bus import Bus
from moe_core.runtime.stores import redis_client
from tests.graph.helpers import purge, relations
from tests.support.store_auth import neo4j_auth

pytestmark = pytest.mark.infra

COUNT_SHARED = """
CALL () { MATCH (e:Entity {tenant: $shared}) RETURN count(e) AS entities }
CALL () { MATCH ()-[r:REL {tenant: $shared}]->() RETURN count(r) AS relations }
RETURN entities, relations
"""
BACKDATE = "MATCH ()-[r:REL {id: $id}]->() SET r.asserted_at = r.asserted_at - $seconds"


async def test_the_ontology_is_seeded_once_and_seeding_again_changes_nothing(graph_db: GraphDB) -> None:
    onto = ontology.load()
    before = (await graph_db.read(COUNT_SHARED, shared=SHARED_TENANT))[0]
    assert before == {"entities": len(onto.entities), "relations": len(onto.relations)}
    assert await ontology.seed(graph_db, onto) is False  # this version is seeded: skipped
    forced = dataclasses.replace(onto, digest=f"test-{uuid.uuid4().hex}")
    try:
        assert await ontology.seed(graph_db, forced) is True  # every MERGE again
        assert (await graph_db.read(COUNT_SHARED, shared=SHARED_TENANT))[0] == before
    finally:
        await graph_db.write("MATCH (s:OntologySeed {digest: $digest}) DELETE s", digest=forced.digest)


async def test_services_starting_together_seed_a_new_ontology_version_once(graph_db: GraphDB,
                                                                           neo4j_url: str) -> None:
    """graph-rag, graph-ingest and gap-healer start at once, each with its own driver: one writes the version,
    the others wait for its claim and skip it (before, all three wrote it at once; issue 52)."""
    onto = dataclasses.replace(ontology.load(), digest=f"test-{uuid.uuid4().hex}")
    before = (await graph_db.read(COUNT_SHARED, shared=SHARED_TENANT))[0]
    services = [GraphDB(neo4j_url, *neo4j_auth()) for _ in range(3)]
    try:
        wrote = await asyncio.gather(*(ontology.seed(db, onto) for db in services))
        assert sorted(wrote) == [False, False, True]
        marks = await graph_db.read("MATCH (s:OntologySeed {digest: $digest}) RETURN s.seeded_at AS at, "
                                    "s.entities AS entities", digest=onto.digest)
        assert len(marks) == 1 and marks[0]["at"] is not None and marks[0]["entities"] == len(onto.entities)
        assert (await graph_db.read(COUNT_SHARED, shared=SHARED_TENANT))[0] == before
        assert await asyncio.gather(*(ontology.seed(db, onto) for db in services)) == [False] * 3
    finally:
        await asyncio.gather(*(db.close() for db in services))
        await graph_db.write("MATCH (s:OntologySeed {digest: $digest}) DELETE s", digest=onto.digest)


async def test_merge_counts_versions_and_assertions_once_per_origin(graph_db: GraphDB, tenant: str) -> None:
    store = GraphStore(graph_db)
    triple = Triple(subject="Zorblaxin", relation="TREATS", object="Headache", confidence=0.8)
    first = await store.write_triple(triple, Provenance(tenant=tenant, source="extracted", origin="answer-1"))
    again = await store.write_triple(triple, Provenance(tenant=tenant, source="extracted", origin="answer-1"))
    second = await store.write_triple(triple, Provenance(tenant=tenant, source="extracted", origin="answer-2"))
    assert (first.created, again.repeated, second.created) == (True, True, False)
    assert first.id == again.id == second.id
    [row] = await relations(graph_db, tenant)
    assert (row["version"], row["assertions"], row["source"]) == (2, 2, "extracted")
    assert row["subject_tenant"] == tenant and row["object_tenant"] == SHARED_TENANT  # Headache is shared
    assert row["trust"] == pytest.approx(0.8 * 0.6)  # extracted: the original's weight 0.6


async def test_conflicts_and_blast_radius_are_seen_per_tenant(graph_db: GraphDB, tenant: str) -> None:
    store = GraphStore(graph_db)
    clash = await store.conflicts(tenant, Triple(subject="Advil", relation="TREATS", object="peptic ulcer"))
    assert [(c["type"], c["source"]) for c in clash] == [("CAUSES", "ontology")]
    assert await store.conflicts(tenant, Triple(subject="Ibuprofen", relation="USES", object="Pain")) == []
    assert await store.reach(tenant, Triple(subject="Quuxinol", relation="IS_A", object="Drug")) > 40
    assert await store.reach(tenant, Triple(subject="Quuxinol", relation="TREATS", object="Zzyzx")) == 0


async def _context(graph_db: GraphDB, tenant: str, question: str, floor: float = 0.0) -> dict:
    settings = GraphRagSettings(graph_cache_ttl_s=0, graph_trust_floor=floor)
    redis = redis_client(settings.redis_url)
    try:
        return await GraphRag(settings, Bus(settings), graph_db, redis).context(tenant, question, {})
    finally:
        await redis.aclose()


async def test_one_tenant_never_sees_another_tenants_entities(graph_db: GraphDB, tenant: str) -> None:
    other = f"{tenant}-other"
    store = GraphStore(graph_db)
    try:
        await store.write_triple(Triple(subject="Vexoprin", relation="TREATS", object="Migraine", confidence=0.9),
                                 Provenance(tenant=other, source="extracted", origin="o1"))
        await store.write_triple(Triple(subject="Migraine", relation="AFFECTS", object="Glorbic Lobe"),
                                 Provenance(tenant=other, source="extracted", origin="o1"))
        mine = await _context(graph_db, tenant, "Does vexoprin help with migraine?")
        theirs = await _context(graph_db, other, "Does vexoprin help with migraine?")
        assert [e["name"] for e in mine["data"]["entities"]] == ["Migraine"]
        assert "Vexoprin" not in mine["content"] and "Glorbic" not in mine["content"]
        assert mine["data"]["unknown_terms"] == ["vexoprin"]
        assert "- Migraine IS_A Disease [1.00]" in mine["content"]  # shared knowledge is visible to all
        assert [e["name"] for e in theirs["data"]["entities"]] == ["Vexoprin", "Migraine"]
        assert "- Vexoprin TREATS Migraine [0.54]" in theirs["content"]
        assert "Glorbic Lobe" in theirs["content"]
        for visible in (await reads.search(graph_db, [tenant, SHARED_TENANT], "vexoprin"),
                        await reads.search(graph_db, [tenant, SHARED_TENANT], "glorbic")):
            assert visible == []
        stats = await reads.stats(graph_db, [tenant, SHARED_TENANT])
        assert stats["by_tenant"][tenant] == {"entities": 0, "relations": 0}
    finally:
        await purge(graph_db, other)


async def test_flagged_relations_are_not_retrieved_old_ones_are_ranked_last(graph_db: GraphDB, tenant: str) -> None:
    """As in the original, no relation is left out for its trust (MOE_GRAPH_TRUST_FLOOR 0), only flagged ones;
    an old relation (decayed to the minimum 0.3) comes after a fresh one of the same kind; with a floor set,
    it is left out."""
    store, policy = GraphStore(graph_db), TrustPolicy()
    prov = Provenance(tenant=tenant, source="extracted", origin="a1")
    good = await store.write_triple(Triple(subject="Plombex", relation="TREATS", object="Cough", confidence=0.9), prov)
    bad = await store.write_triple(Triple(subject="Plombex", relation="CAUSES", object="Fatigue", confidence=0.9),
                                   prov)
    old = await store.write_triple(Triple(subject="Plombex", relation="AFFECTS", object="Liver", confidence=0.9), prov)
    before = await _context(graph_db, tenant, "What is plombex?")
    assert {good.id, bad.id, old.id} <= {f["id"] for f in before["data"]["facts"]}
    mark, changed = await apply_feedback(graph_db, policy, tenant, [bad.id], 1, "fb-1")
    assert (mark, changed) == ("flagged", [bad.id])
    await graph_db.write(BACKDATE, id=old.id, seconds=400 * DAY_S)
    await recompute_trust(graph_db, policy, page_size=200)
    after = await _context(graph_db, tenant, "What is plombex?")
    ids = [f["id"] for f in after["data"]["facts"]]
    assert good.id in ids and bad.id not in ids and old.id in ids
    assert ids.index(good.id) < ids.index(old.id)  # 0.54 before 0.9 x 0.6 x 0.3 = 0.162
    floored = {f["id"] for f in (await _context(graph_db, tenant, "What is plombex?", floor=0.3))["data"]["facts"]}
    assert good.id in floored and old.id not in floored
    assert "Plombex TREATS Cough" in after["content"] and "Fatigue" not in after["content"]
    flagged = {r["id"]: r for r in await relations(graph_db, tenant)}[bad.id]
    assert flagged["flagged"] is True and flagged["version"] == 2


async def test_the_blast_radius_report_of_the_shared_ontology(graph_db: GraphDB) -> None:
    report = await reach_distribution(graph_db, SHARED_TENANT)
    assert len(report.reaches) == len(ontology.load().entities)
    assert report.reaches[0] == ("Drug", 47)
    assert report.summary() == {"min": 3, "median": 13, "p90": 22, "p95": 26, "max": 47}
    assert [name for name in report.above(30)] == ["Drug (47)", "Disease (46)", "Mathematical Concept (33)",
                                                   "Aspirin (32)", "Cardiovascular Disease (32)", "NSAID (31)"]
