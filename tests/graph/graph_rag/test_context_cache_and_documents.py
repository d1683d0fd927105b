"""graph-rag's Redis context cache (reused while the tenant's graph is unchanged, rebuilt after a write)
and the optional Chroma lookup filtered by the plan's metadata_filters and the tenant (real Redis,
Neo4j, Chroma)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import chromadb
import pytest

from graph_rag.app import GraphRag
from graph_rag.documents import DocumentLookup
from graph_rag.settings import GraphRagSettings
from moe_core.knowledge.graph import SHARED_TENANT, GraphDB, GraphStore, Provenance, Triple
from moe_core.runtime import redis_batch
from moe_core.runtime.bus import Bus
from moe_core.runtime.stores import redis_client
from tests.support.namespaces import new_namespace

pytestmark = pytest.mark.infra


@pytest.fixture
async def rag(graph_db: GraphDB, infra: dict[str, str]) -> AsyncIterator[GraphRag]:
    settings = GraphRagSettings(redis_url=infra["redis"], topic_namespace=new_namespace("c"))
    redis = redis_client(settings.redis_url)
    yield GraphRag(settings, Bus(settings), graph_db, redis)
    await redis.aclose()


async def test_the_context_is_cached_until_the_tenants_graph_changes(
        rag: GraphRag, graph_db: GraphDB, tenant: str) -> None:
    question = "What does Klaxiprone do to a headache?"
    first = await rag.context(tenant, question, {})
    again = await rag.context(tenant, question, {})
    assert (first["data"]["cached"], again["data"]["cached"]) == (False, True)
    assert again["content"] == first["content"] and "Klaxiprone" not in first["content"]
    await GraphStore(graph_db).write_triple(Triple(subject="Klaxiprone", relation="TREATS", object="Headache",
                                                   confidence=0.9),
                                            Provenance(tenant=tenant, source="extracted", origin="a1"))
    fresh = await rag.context(tenant, question, {})
    assert fresh["data"]["cached"] is False  # the write moved the tenant's graph version
    assert "- Klaxiprone TREATS Headache [0.54]" in fresh["content"]
    other = await rag.context(f"{tenant}-b", question, {})
    assert "Klaxiprone" not in other["content"]  # another tenant: another cache entry, no leak


@pytest.fixture
def collection(infra: dict[str, str]) -> Any:
    from fleetlib import api

    api.ensure_up(["chroma"])
    host, port = infra["chroma"].removeprefix("http://").split(":")
    client = chromadb.HttpClient(host=host, port=int(port))
    name = f"graphdocs-{uuid.uuid4().hex[:8]}"
    col = client.create_collection(name, embedding_function=None)
    yield col
    client.delete_collection(name)


async def test_documents_are_filtered_by_the_plans_metadata_and_the_tenant(
        graph_db: GraphDB, infra: dict[str, str], collection: Any, tenant: str) -> None:
    docs = [
        ("d1", "Warfarin dosing must be adjusted for elderly patients.", {"domain": "medical", "tenant_id": tenant}),
        ("d2", "Warfarin and aspirin together raise the bleeding risk.", {"domain": "medical",
                                                                         "tenant_id": SHARED_TENANT}),
        ("d3", "Warfarin is also a rat poison.", {"domain": "toxicology", "tenant_id": tenant}),
        ("d4", "Warfarin notes of another tenant.", {"domain": "medical", "tenant_id": "someone-else"}),
        ("d5", "Nothing about that drug here.", {"domain": "medical", "tenant_id": tenant}),
    ]
    collection.add(ids=[d[0] for d in docs], documents=[d[1] for d in docs], metadatas=[d[2] for d in docs],
                   embeddings=[[0.1, 0.2, 0.3]] * len(docs))
    settings = GraphRagSettings(redis_url=infra["redis"], topic_namespace=new_namespace("c"),
                                chroma_url=infra["chroma"], graph_chroma_collection=collection.name,
                                graph_chroma_results=5)
    redis = redis_client(settings.redis_url)
    lookup = DocumentLookup(settings.chroma_url, collection.name, limit=5)
    try:
        rag = GraphRag(settings, Bus(settings), graph_db, redis, lookup)
        scoped = await rag.context(tenant, "Is warfarin safe for me?", {"domain": "medical"})
        unscoped = await rag.context(tenant, "Is warfarin safe for me?", {})
    finally:
        await redis.aclose()
    assert sorted(d["ref"] for d in scoped["data"]["documents"]) == [f"{collection.name}/d1", f"{collection.name}/d2"]
    assert sorted(d["ref"] for d in unscoped["data"]["documents"]) == [
        f"{collection.name}/d1", f"{collection.name}/d2", f"{collection.name}/d3"]
    assert "Related documents:" in scoped["content"] and "bleeding risk" in scoped["content"]
    assert {"kind": "document", "ref": f"{collection.name}/d2", "url": None,
            "title": "Warfarin and aspirin together raise the bleeding risk."} in scoped["sources"]
    assert any(f["subject"] == "Aspirin" and f["object"] == "Warfarin" for f in scoped["data"]["facts"])


async def test_in_a_task_the_context_cache_write_goes_with_the_handlers_next_round_trip(
        rag: GraphRag, tenant: str) -> None:
    """Inside a handler's scope (GraphRag.handle opens one) the cache write is queued for the stored outcome's
    round trip (moe_core.runtime.redis_batch), not sent alone; it reaches Redis by the scope's end at the latest."""
    question = "What does Zentrimab do to a fever?"
    async with redis_batch.deferring(rag.redis):
        first = await rag.context(tenant, question, {})
        assert first["data"]["cached"] is False and redis_batch.pending() == 1
    assert redis_batch.pending() == 0
    again = await rag.context(tenant, question, {})
    assert again["data"]["cached"] is True and again["content"] == first["content"]


async def test_facts_and_requirement_chains_come_in_one_neo4j_read(
        rag: GraphRag, graph_db: GraphDB, tenant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the process has read the tenant's graph versions, a new question about known entities costs one read:
    the versions, the facts and the requirement chains in one query (graph_rag.retrieval.CONTEXT), the versions
    checking the guess the cache key was made with; a question about none, one (the versions, to check that no
    entity was added since the lexicon was read)."""
    store = GraphStore(graph_db)
    for relation, obj in (("REQUIRES", "Quorvian Passport"), ("PERFORMED_AT", "Quorvian Embassy"),
                          ("CAUSES", "Quorvian Paperwork")):
        await store.write_triple(Triple(subject="Quorvian Visa", relation=relation, object=obj, confidence=0.9),
                                 Provenance(tenant=tenant, source="extracted", origin="q1"))
    await rag.context(tenant, "warm up the lexicon", {})  # the lexicon's own read, once per graph version
    reads: list[str] = []
    real = graph_db.read

    async def counted(query: Any, **params: Any) -> list[dict[str, Any]]:
        reads.append(query)
        return await real(query, **params)

    monkeypatch.setattr(graph_db, "read", counted)
    ctx = await rag.context(tenant, "How do I get a quorvian visa?", {})
    assert len(reads) == 1
    assert {(f["subject"], f["type"], f["object"]) for f in ctx["data"]["facts"]} == {
        ("Quorvian Visa", "REQUIRES", "Quorvian Passport"), ("Quorvian Visa", "PERFORMED_AT", "Quorvian Embassy"),
        ("Quorvian Visa", "CAUSES", "Quorvian Paperwork")}
    assert sorted(c["types"] for c in ctx["data"]["chains"]) == [["PERFORMED_AT"], ["REQUIRES"]]
    reads.clear()
    none = await rag.context(tenant, "How do I bake sourdough bread?", {})
    assert len(reads) == 1 and none["data"]["facts"] == [] and none["data"]["chains"] == []


async def test_an_entity_written_after_the_last_read_is_found_by_the_next_question(
        rag: GraphRag, graph_db: GraphDB, tenant: str) -> None:
    """The versions the process last read are only a guess: written since (by graph-ingest, an import, a review),
    the graph has an entity the cached lexicon lacks, and the next question still finds it and its facts, and a
    context cached under the old versions is not served."""
    store = GraphStore(graph_db)
    await store.write_triple(Triple(subject="Ostravel", relation="TREATS", object="Vertigo", confidence=0.9),
                             Provenance(tenant=tenant, source="extracted", origin="v1"))
    question = "What treats Vertigo, and what does Ostravel treat?"
    first = await rag.context(tenant, question, {})  # the versions and the lexicon as they are now
    assert "- Ostravel TREATS Vertigo" in first["content"] and first["data"]["cached"] is False
    await store.write_triple(Triple(subject="Velmoraxin", relation="TREATS", object="Vertigo", confidence=0.9),
                             Provenance(tenant=tenant, source="extracted", origin="v2"))
    new = await rag.context(tenant, "What does Velmoraxin treat?", {})  # an entity the cached lexicon lacks
    assert "- Velmoraxin TREATS Vertigo" in new["content"]
    again = await rag.context(tenant, question, {})  # cached under the old versions: rebuilt, not served
    assert again["data"]["cached"] is False and "Velmoraxin" in again["content"]
