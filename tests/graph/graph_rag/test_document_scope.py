"""graph-rag's document lookup costs what it must (real Redis, Chroma, Neo4j): the question's vector the planner
shared is used (no second embedding), and a tenant whose scope (its own and the shared documents) has no
document costs no Chroma call and no embedding — while a document written through the gateway's store (and
its version bump, in the gateway's order) is found by the next lookup, and one deleted is gone."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

import moe_core.knowledge.question_vectors as question_vectors
from control_plane.memory.store import MemoryStore, NewDocument
from graph_rag.app import GraphRag
from graph_rag.documents import DocumentLookup
from graph_rag.settings import GraphRagSettings
from moe_core.contracts import ChatMessage, ChatRequest, deadline_in
from moe_core.knowledge.embeddings import MiniLMEmbedder, chroma_client, get_embedder
from moe_core.knowledge.graph import SHARED_TENANT, GraphDB
from moe_core.knowledge.memory import collection_name
from moe_core.knowledge.memory.store import version_key
from moe_core.llm.exact_cache import normalise
from moe_core.runtime.bus import Bus
from moe_core.runtime.stores import redis_client
from planner.router import SemanticRouter
from planner.semantic_cache import SemanticCache, cache_key, cache_scope
from planner.settings import PlannerSettings
from planner.vectors import Vectors
from tests.support.namespaces import new_namespace
from tests.support.store_calls import store_calls

pytestmark = pytest.mark.infra
VPN = "# VPN tokens\n\nA lost VPN token is replaced by the IT service desk within one working day."
PARKING = "# Parking\n\nStaff park in garage C; visitors get a ticket at the front desk."


@dataclass
class Scope:
    namespace: str
    redis: Redis
    rag: GraphRag
    embedder: MiniLMEmbedder  # graph-rag's own (not the planner's, which this process also holds)
    store: MemoryStore  # the gateway's

    async def write(self, tenant: str, text: str) -> str:
        """As the gateway's POST /v1/memory/documents: Chroma first, then the tenant's documents version."""
        doc = NewDocument(tenant=tenant, title=text.split("\n")[0][2:], source="s.md", domain="it", document_set="",
                          media_type="text/markdown", doc_time=0, sha256="x", chunks=[text], chars=len(text))
        body = await self.store.add(doc)
        await self.redis.incr(version_key(self.namespace, tenant))
        return str(body["id"])

    async def delete(self, tenant: str, document_id: str) -> None:
        assert await self.store.delete(tenant, document_id)
        await self.redis.incr(version_key(self.namespace, tenant))

    async def ask(self, tenant: str, question: str) -> tuple[list[str], float, int]:
        """(document ids found, Chroma calls made, texts embedded) of one graph-rag context."""
        calls, embedded = store_calls("chroma"), self.embedder.computations
        ctx = await self.rag.context(tenant, question, {})
        assert ctx["data"]["cached"] is False
        ids = [d["metadata"]["document_id"] for d in ctx["data"]["documents"]]
        return ids, store_calls("chroma") - calls, self.embedder.computations - embedded


@pytest.fixture
async def scope(graph_db: GraphDB, infra: dict[str, str]) -> AsyncIterator[Scope]:
    from fleetlib import api

    api.ensure_up(["chroma"])
    namespace = new_namespace("c")
    settings = GraphRagSettings(redis_url=infra["redis"], topic_namespace=namespace, chroma_url=infra["chroma"])
    name = collection_name(namespace)
    embedder = MiniLMEmbedder()
    redis = redis_client(settings.redis_url)
    lookup = DocumentLookup(settings.chroma_url, name, embedder=embedder)
    await lookup.ready()  # the client and the collection opened: from here every Chroma call is a lookup's
    yield Scope(namespace, redis, GraphRag(settings, Bus(settings), graph_db, redis, lookup), embedder,
                MemoryStore(settings.chroma_url, name, get_embedder()))
    await (await chroma_client(settings.chroma_url)).delete_collection(name)
    await redis.delete(*[k async for k in redis.scan_iter(f"*{namespace}*")] or ["-"])
    await redis.aclose()


async def test_graph_rag_uses_the_question_vector_the_planner_shared(scope: Scope, tenant: str,
                                                                     infra: dict[str, str]) -> None:
    vpn = await scope.write(tenant, VPN)
    # the MiniLM cache: its lookup's vector is graph-rag's (the static cache, the default, runs no MiniLM for a
    # question the router does not route: graph-rag embeds it itself, only when the scope has documents, as below)
    planner = PlannerSettings(redis_url=infra["redis"], chroma_url=infra["chroma"], topic_namespace=scope.namespace,
                              cache_embedding="minilm")
    vectors = Vectors(planner.chroma_url)
    cache = SemanticCache(vectors, scope.redis, planner, Bus(planner))
    cache.index.loaded.set()  # no cache topic is read here: the index is empty and complete
    question = "Who replaces a lost VPN token?"
    request = ChatRequest(response_id=uuid.uuid4().hex, tenant_id=tenant, deadline_at=deadline_in(60),
                          mode="moe-orchestrator", messages=[ChatMessage(role="user", content=question)])
    cached_scope = cache_scope(request)
    assert cached_scope is not None
    try:
        await cache.lookup(cached_scope, question)  # the planner embeds the question for its cache ...
        await cache.remember(cache_key(cached_scope, question, request.response_id), cached_scope, request, question)
    finally:
        await vectors.drop(cache.name)
    shared = await scope.redis.get(question_vectors.key(scope.namespace, normalise(question)))
    assert question_vectors.decode(shared) is not None  # ... and shares it before the plan goes out

    found, _, embedded = await scope.ask(tenant, question)
    assert (found, embedded) == ([vpn], 0)  # found with the planner's vector: no second embedding

    routed = "My VPN token is lost, who gives me a new one?"  # not cacheable (e.g. a later turn): the router's
    assert await SemanticRouter(vectors, 0.55, 0.15).route(routed) is not None
    assert await vectors.share(scope.redis, scope.namespace, routed)
    found, _, embedded = await scope.ask(tenant, routed)
    assert (found, embedded) == ([vpn], 0)
    found, _, embedded = await scope.ask(tenant, "Who do I ask when my VPN token is lost?")
    assert (found, embedded) == ([vpn], 1)  # nothing shared for this one: embedded here, once


async def test_a_scope_without_documents_costs_no_chroma_call_until_a_document_is_written(
        scope: Scope, tenant: str) -> None:
    found, calls, embedded = await scope.ask(tenant, "Where do visitors park?")
    assert (found, calls, embedded) == ([], 1, 0)  # one look whether the scope has any document; no embedding
    found, calls, embedded = await scope.ask(tenant, "Where do staff park?")
    assert (found, calls, embedded) == ([], 0, 0)  # known empty: no Chroma call at all

    shared = await scope.write(SHARED_TENANT, PARKING)  # a shared document is in every tenant's scope
    found, calls, _ = await scope.ask(tenant, "Where do visitors park?")
    assert found == [shared] and calls >= 1
    await scope.delete(SHARED_TENANT, shared)
    assert (await scope.ask(tenant, "Where do visitors park?"))[0] == []

    own = await scope.write(tenant, VPN)
    assert (await scope.ask(tenant, "Who replaces a lost VPN token?"))[0] == [own]
    assert (await scope.ask(f"{tenant}-other", "Who replaces a lost VPN token?"))[0] == []  # not in B's scope
    assert (await scope.ask(f"{tenant}-other", "Who replaces my lost VPN token?"))[1] == 0
    await scope.delete(tenant, own)
    found, calls, _ = await scope.ask(tenant, "Who replaces a lost VPN token?")
    assert (found, calls) == ([], 1)  # a version moved: asked Chroma again, found the scope empty
    assert (await scope.ask(tenant, "Who replaces my lost VPN token?"))[1:] == (0, 0)
