"""graph-rag: graph tasks -> knowledge-graph context (facts, requirement chains, documents) and
ontology gaps for the terms the graph does not know."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from fastapi import FastAPI
from redis.asyncio import Redis

from graph_rag import core, doc_scope
from graph_rag.doc_scope import DocumentScope
from graph_rag.documents import DocumentLookup
from graph_rag.retrieval import Retriever
from graph_rag.settings import GraphRagSettings
from graph_rag.terms import Extraction, extract
from moe_core.contracts import GraphTask, OntologyGap, Source, TaskResult
from moe_core.contracts.messages import GAP_BATCH
from moe_core.knowledge.embeddings import get_embedder
from moe_core.knowledge.graph import GraphDB, GraphStore, visible_tenants
from moe_core.knowledge.graph.lifecycle import prepare_graph
from moe_core.knowledge.graph.names import normalize
from moe_core.knowledge.kinds import question_kind
from moe_core.knowledge.memory import FilterError, collection_name, parse_filters
from moe_core.runtime import redis_batch
from moe_core.runtime.bus import Bus
from moe_core.runtime.idempotency import Memo
from moe_core.stage.resources import Outcomes, Resources
from moe_core.stage.runtime import create_stage_app
from moe_core.stage.spec import Consumes, MemoPolicy, Notes, Stage

log = logging.getLogger(__name__)
CATEGORY = "knowledge_graph"
FETCH_FACTOR = 5
MAX_QUESTION_CHARS = 4000  # terms are taken from the start of a very long question


class GraphRag:
    def __init__(self, settings: GraphRagSettings, bus: Bus, db: GraphDB, redis: Redis,
                 documents: DocumentLookup | None = None, outcomes: Outcomes[TaskResult] | None = None) -> None:
        self.settings = settings
        self.bus = bus
        self.redis = redis
        self.store = GraphStore(db, settings.trust_policy())
        self.retriever = Retriever(db)
        self.documents = documents
        self.outcomes = outcomes or Outcomes(Memo(redis, "graph-rag:result", settings.result_ttl_s), TaskResult, None)
        self.cache_prefix = f"graph-rag:ctx:{settings.topic_namespace}"

    async def handle(self, task: GraphTask) -> None:
        late = {**task.child_fields(), "task_id": task.task_id, "kind": "graph", "category": CATEGORY}
        async with redis_batch.deferring(self.redis):  # the context cache's write goes with the stored outcome
            result, fresh = await self.outcomes.once(
                f"{task.response_id}:{task.task_id}", lambda: self._run(task), message=task,
                expired=lambda: TaskResult(**late, confidence="low", error="deadline passed before the task started"),
                unavailable=lambda down: TaskResult(**late, confidence="low", error=str(down)))
        gaps = await self._new_gaps(task, (result.data or {}).get("unknown_terms", [])) if fresh else []
        await self.bus.publish_all([(result, self.bus.topics.results),  # one wait for the broker, not one per gap
                                    *((gap, self.bus.topics.ontology_gaps) for gap in gaps)])

    async def _run(self, task: GraphTask) -> TaskResult:
        started = time.perf_counter()
        base = {**task.child_fields(), "task_id": task.task_id, "kind": "graph", "category": CATEGORY}
        try:
            filters = parse_filters(task.metadata_filters).dump()
        except FilterError as exc:  # never widen the scope by ignoring a filter: no context instead
            log.warning("graph task with invalid metadata_filters: %s", exc)
            return TaskResult(**base, confidence="low", error=f"invalid metadata_filters: {exc}")
        ctx = await self.context(task.tenant_id, task.question, filters)
        return TaskResult(**base, content=ctx["content"], confidence="medium" if ctx["content"] else "low",
                          sources=[Source.model_validate(s) for s in ctx["sources"]], data=ctx["data"],
                          duration_ms=(time.perf_counter() - started) * 1000)

    async def context(self, tenant: str, question: str, filters: dict[str, Any]) -> dict[str, Any]:
        """The context for one question, from the Redis cache while the tenant's graph is unchanged.

        The graph versions in the cache key are the ones this process last read (graph_rag.retrieval.Retriever.seen)
        and are checked, not trusted: by the context query itself, which reads the versions with the facts and what
        changed in the cached lexicons (a new question costs one Neo4j read, not two or three), or by a versions read
        for a cached context. Versions that moved meanwhile mean another round with the current ones, unless the
        question has the same names and unknown terms in the current lexicons: then its facts, read with the current
        versions, are the current context (after every learned answer the version moves: issue 52, one Neo4j query
        saved)."""
        tenants = visible_tenants(tenant)
        tag = f"{self.settings.graph_trust_floor}:{self.settings.graph_max_facts}:{self.settings.graph_max_chains}"
        seen = self.retriever.seen(tenants)
        scope = None
        if self.documents is not None:  # the tenant's or the shared documents changed: a new context
            read_scope = doc_scope.read_scope(self.redis, self.settings.topic_namespace, tenant, question)
            if seen is None:
                versions, scope = await asyncio.gather(self._versions(tenants), read_scope)
            else:
                versions, scope = seen, await read_scope
            tag += f":docs={scope.tag}"
        else:
            versions = seen if seen is not None else await self._versions(tenants)
        checked, ttl = seen is None, self.settings.graph_cache_ttl_s
        for _ in range(2):
            cache_key = f"{self.cache_prefix}:{core.cache_key(tenant, question, filters, versions, tag)}"
            cached = await self.redis.get(cache_key) if ttl else None
            if cached:
                current = versions if checked else await self._versions(tenants)
                if current == versions:
                    ctx: dict[str, Any] = json.loads(cached)
                    ctx["data"]["cached"] = True
                    return ctx
                versions, checked = current, True
                continue
            ctx, complete, read, found = await self._build(tenant, tenants, versions, question, filters, scope,
                                                           checked)
            current = read if read is not None else versions  # None: `versions` were checked
            if current != versions and await self._extract(tenants, current, question) == found:
                versions = current  # the graph moved, not the names this question has: its facts were read after
            if current == versions:
                if ttl and complete:
                    key = f"{self.cache_prefix}:{core.cache_key(tenant, question, filters, versions, tag)}"
                    await self._remember(key, ctx, ttl)
                return ctx
            versions, checked = current, True  # built with an older graph's lexicon: again with the current one
        ctx, _, _, _ = await self._build(tenant, tenants, versions, question, filters, scope, True)
        return ctx  # the graph moved twice while this question was answered: its context, not cached

    async def _remember(self, key: str, ctx: dict[str, Any], ttl: int) -> None:
        """In a task: with its stored outcome, one round trip (moe_core.runtime.redis_batch)."""
        payload = json.dumps(ctx)
        await redis_batch.send(self.redis, lambda pipe: pipe.set(key, payload, ex=ttl))

    async def _versions(self, tenants: list[str]) -> dict[str, int]:
        versions = await self.store.versions(tenants)
        self.retriever.saw(versions)
        return versions

    async def _extract(self, tenants: list[str], versions: dict[str, int], question: str) -> Extraction:
        """The names the question has in the tenants' lexicons at `versions`, and its unknown terms."""
        lexicons = [await self.retriever.lexicon(t, versions.get(t, 0)) for t in tenants]
        return extract(question[:MAX_QUESTION_CHARS], lexicons, self.settings.graph_max_gaps,
                       drop_generic=not self.settings.graph_gaps_generic)

    async def _build(self, tenant: str, tenants: list[str], versions: dict[str, int], question: str,
                     filters: dict[str, Any], scope: DocumentScope | None, checked: bool
                     ) -> tuple[dict[str, Any], bool, dict[str, int] | None, Extraction]:
        """(the context, whether it is complete enough to cache, the graph versions its query read: None when
        the question names no known entity and `versions` were `checked` (read just now), so nothing was read,
        the names and unknown terms it was built on)."""
        found = await self._extract(tenants, versions, question)
        uids = found.uids()
        floor, limit, max_chains = self.settings.graph_trust_floor, self.settings.graph_max_facts, \
            self.settings.graph_max_chains
        found_facts, found_chains, read = await self.retriever.context(uids, tenants, floor, limit,
                                                                       max_chains * FETCH_FACTOR, checked)
        facts = core.rank_facts(found_facts, set(uids), limit)
        chains = core.maximal_chains(found_chains, max_chains)
        terms = [m.name for m in found.matches] + found.unknown
        kind = question_kind(question)
        documents, complete = await self._documents(scope, terms, filters)
        data = {
            "entities": [{"uid": m.uid, "name": m.name, "term": m.term, "fuzzy": m.fuzzy, "tenant": m.tenant}
                         for m in found.matches],
            "facts": facts, "chains": chains, "documents": documents, "unknown_terms": found.unknown,
            "trust_floor": floor, "cached": False, "knowledge_type": kind,
        }
        ctx = {"content": core.content(facts, chains, documents, self.settings.graph_document_chars,
                                       procedural=kind == "procedural"),
               "sources": [s.model_dump() for s in core.sources(facts, chains, documents)], "data": data}
        return ctx, complete, read, found

    async def _documents(self, scope: DocumentScope | None, terms: list[str],
                         filters: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        if self.documents is None or scope is None:
            return [], True
        try:
            return await self._lookup(self.documents, scope, terms, filters), True
        except Exception as exc:  # optional enrichment: answer without documents, do not cache that
            log.warning("chroma lookup failed, continuing without documents: %s", exc)
            return [], False

    async def _lookup(self, documents: DocumentLookup, scope: DocumentScope, terms: list[str],
                      filters: dict[str, Any]) -> list[dict[str, Any]]:
        """No Chroma call and no embedding for a scope without documents; else the question's shared vector."""
        has, ttl = scope.has_documents(), self.settings.graph_documents_presence_ttl_s
        if has is None and ttl:
            has = await documents.any_of(scope.tenants)
            await doc_scope.remember(self.redis, self.settings.topic_namespace, scope, has, ttl)
        if has is False:
            return []
        return await documents.lookup(scope.text, terms, parse_filters(filters), scope.tenant, scope.vector)

    async def _new_gaps(self, task: GraphTask, terms: list[str]) -> list[OntologyGap]:
        """The unknown terms not reported for this tenant within graph_gap_ttl_s, flagged in one round trip."""
        if not terms:
            return []
        flags = [f"graph-rag:gap:{self.settings.topic_namespace}:{task.tenant_id}:{normalize(t)}" for t in terms]
        async with self.redis.pipeline(transaction=False) as pipe:
            for flag in flags:
                pipe.set(flag, "1", nx=True, ex=self.settings.graph_gap_ttl_s)
            first = await pipe.execute()
        fresh = [term[:200] for term, new in zip(terms, first, strict=True) if new]
        batch = fresh[:GAP_BATCH] if len(fresh) > 1 else []  # classified together (one model call): gap-healer
        return [OntologyGap(**task.child_fields(), term=term, context=task.question[:2000], asked_by=task.asked_by,
                            terms=batch if term in batch else [])  # the asker may not approve what it led to
                for term in fresh]

    async def start(self) -> None:
        await prepare_graph(self.store.db, seed=self.settings.graph_seed_ontology)
        if self.documents is not None and self.documents.embedder is not None:
            try:  # load the embedding model before the first question needs it
                await asyncio.to_thread(self.documents.embedder.embed, ["warm up"])
            except Exception as exc:  # documents are an enrichment: answer without them
                log.warning("embedding model not loaded, document lookups will fail: %s", exc)


def build(res: Resources) -> GraphRag:
    settings: GraphRagSettings = res.settings
    documents = None
    if settings.graph_documents:
        documents = DocumentLookup(settings.chroma_url,
                                   collection_name(settings.topic_namespace, settings.graph_chroma_collection),
                                   settings.graph_chroma_tenant_key, settings.graph_chroma_results,
                                   get_embedder(), settings.graph_document_max_distance)
    return GraphRag(settings, res.bus, res.db, res.redis, documents, res.outcomes())


STAGE = Stage(
    name="graph-rag",
    settings=GraphRagSettings,
    build=build,
    summary="Graph tasks -> knowledge-graph context (facts, requirement chains, documents); unknown terms "
            "-> ontology gaps.",
    consumes=(Consumes("tasks_graph", GraphTask, "handle", per_task=True),),
    publishes=("results", "ontology_gaps"),
    needs=("redis", "neo4j"),
    memo=MemoPolicy("graph-rag:result", TaskResult, ttl="result_ttl_s"),
    notes=Notes(keeps="Neo4j (reads); Redis `graph-rag:result:*` (result memo), `graph-"
                    "rag:ctx:<ns>:*` (context cache, TTL `MOE_GRAPH_CACHE_TTL_S`), `graph-"
                    "rag:gap:*` (gap dedupe); Chroma `moe-memory-<ns>` (tenant documents, read; "
                    "written by the control plane's `/v1/memory/documents`)",
                dedupe="`Memo` keyed by `response_id:task_id`; gaps `SET NX` per tenant and term",
                redelivery="republishes the stored result; gaps only from the first attempt"),
)


def create_app(settings: GraphRagSettings | None = None, **overrides: Any) -> FastAPI:
    """Overrides (tests): bus, db, redis, manage_broker."""
    return create_stage_app(STAGE, settings, **overrides)
