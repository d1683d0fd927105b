"""graph-rag's document lookup per full request, counted (not timed), on the local Redis, Chroma and Neo4j
(addresses and credentials from fleetlib, bench.infra; started if they are not running):

  python -m bench.graphrag_costs [N]

For N fresh questions (as the bench asks) the planner's part is played by its SemanticCache (lookup, then
remember: where it shares the question's vector), then graph-rag builds the context; counted are graph-rag's
Chroma calls, the texts its own embedder runs through the model and its Redis round trips (and, only as an
indication, the CPU time of this process, client side of every call included), for a tenant whose scope has
no document and for one with a document. The first question of each warms the clients and is not counted.
For a before/after, run it with an older tree first on PYTHONPATH, e.g.
`git archive <rev> libs services | tar -x -C /tmp/before` and
`PYTHONPATH=/tmp/before/libs:/tmp/before/services/graph-rag:/tmp/before/services/planner:/tmp/before/services/gateway:.
python -m bench.graphrag_costs`.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import sys
import time
import uuid
from typing import Any

from bench.infra import connect

DOC = "# VPN tokens\n\nA lost VPN token is replaced by the IT service desk within one working day."


async def costs(n: int) -> None:
    from control_plane.memory.store import MemoryStore, NewDocument
    from graph_rag.app import GraphRag
    from graph_rag.documents import DocumentLookup
    from graph_rag.settings import GraphRagSettings
    from moe_core.contracts import ChatMessage, ChatRequest, deadline_in
    from moe_core.knowledge.embeddings import MiniLMEmbedder, chroma_client, get_embedder
    from moe_core.knowledge.graph import GraphDB
    from moe_core.knowledge.memory import collection_name
    from moe_core.knowledge.memory.store import version_key
    from moe_core.runtime.bus import Bus
    from moe_core.runtime.stores import redis_client
    from planner.semantic_cache import SemanticCache, cache_key, cache_scope
    from planner.settings import PlannerSettings
    from planner.vectors import Vectors
    store_calls = importlib.import_module("tests.support.store_calls").store_calls
    neo4j_auth = importlib.import_module("tests.support.store_auth").neo4j_auth
    namespace = importlib.import_module("tests.support.namespaces").new_namespace("b")

    eps = connect(["kafka", "redis", "chroma", "neo4j"])
    stores: dict[str, Any] = {"redis_url": eps["redis"], "chroma_url": eps["chroma"], "kafka_bootstrap": eps["kafka"]}
    settings = GraphRagSettings(topic_namespace=namespace, neo4j_url=eps["neo4j"], **stores)
    name = collection_name(namespace)
    embedder, computed = MiniLMEmbedder(), [0]  # graph-rag's own (the planner's is get_embedder())
    compute = embedder._compute

    def counting(texts: list[str]) -> Any:
        computed[0] += len(texts)
        return compute(texts)

    embedder._compute = counting  # type: ignore[method-assign]  # counted the same way in an older tree
    redis, db = redis_client(settings.redis_url), GraphDB(settings.neo4j_url, *neo4j_auth())
    rag = GraphRag(settings, Bus(settings), db, redis, DocumentLookup(settings.chroma_url, name, embedder=embedder))
    planner = PlannerSettings(topic_namespace=namespace, **stores)
    vectors = Vectors(planner.chroma_url)
    takes_bus = "bus" in inspect.signature(SemanticCache).parameters  # an older tree's has no topic to publish to
    cache: Any = SemanticCache(vectors, redis, planner, *([Bus(planner)] if takes_bus else []))
    if takes_bus:
        cache.index.loaded.set()  # a fresh namespace: nothing to read from its (absent) cache topic
    with_docs = f"bench-docs-{uuid.uuid4().hex[:6]}"
    await MemoryStore(settings.chroma_url, name, get_embedder()).add(NewDocument(
        tenant=with_docs, title="VPN tokens", source="it/vpn.md", domain="it", document_set="",
        media_type="text/markdown", doc_time=0, sha256="-", chunks=[DOC], chars=len(DOC)))
    await redis.incr(version_key(namespace, with_docs))  # as the gateway does after the write
    try:
        for label, tenant in (("no documents", f"bench-empty-{uuid.uuid4().hex[:6]}"), ("one document", with_docs)):
            calls = embedded = trips = cpu = 0.0
            for i in range(n + 1):
                question = f"Who replaces a lost VPN token number {i} for {label}?"
                request = ChatRequest(response_id=uuid.uuid4().hex, tenant_id=tenant, deadline_at=deadline_in(60),
                                      mode="moe-orchestrator", messages=[ChatMessage(role="user", content=question)])
                scope = cache_scope(request) or ""
                await cache.lookup(scope, question)  # the planner, as for every cacheable request
                await cache.remember(cache_key(scope, question, request.response_id), scope, request, question)
                before, done, sent = store_calls("chroma"), computed[0], store_calls("redis")
                started = time.process_time()
                await rag.context(tenant, question, {})
                if i:  # the first question opened the clients
                    cpu += time.process_time() - started
                    calls += store_calls("chroma") - before
                    embedded += computed[0] - done
                    trips += store_calls("redis") - sent
            print(f"graph-rag, tenant with {label}: {calls / n:.2f} Chroma calls, {embedded / n:.2f} embeddings, "
                  f"{trips / n:.2f} Redis round trips, {cpu * 1000 / n:.1f} ms CPU in this process per full request "
                  f"({n} fresh questions)")
    finally:
        await vectors.drop(cache.name)
        await (await chroma_client(settings.chroma_url)).delete_collection(name)
        await redis.delete(*[k async for k in redis.scan_iter(f"*{namespace}*")] or ["-"])
        await redis.aclose()
        await db.close()


if __name__ == "__main__":
    asyncio.run(costs(int(sys.argv[1]) if len(sys.argv) > 1 else 10))
