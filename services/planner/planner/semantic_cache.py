"""Semantic cache: earlier answers found by the meaning of the question (Chroma, MiniLM embeddings).

Entries embed the NORMALISED QUESTION and keep the answer in metadata (the original system embedded the
answer and searched with the question, so it could barely hit). One collection per topic namespace; an
entry is scoped by tenant, mode and system prompt (`scope`). Lookup: the nearest unflagged, unexpired
entries of the scope; distance <= hard threshold and no guard objection (planner.cache_text.conflict) is a
hit, answered with no model call; up to the soft threshold the entries become few-shot examples.

Writing: when the planner plans a cacheable request it remembers (Redis) the question and scope under the
plan's `cache_key` (and shares the question's vector with graph-rag: moe_core.question_vectors); the merger
copies the key onto the Answer; the planner consumes `answers` and stores good answers (no error, not a hit,
finish stop), and also as an exact repeat in Redis for the gateway (moe_core.exact_cache). Negative feedback
(rating 1-2) flags the entry and removes the exact repeat.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis

from moe_core import exact_cache, question_vectors
from moe_core.contracts import Answer, ChatRequest, Feedback, FewShot, ModelUse
from moe_core.exact_cache import ExactAnswers, ExactEntry, cache_scope
from moe_core.observability.metrics import SEMANTIC_CACHE
from planner.cache_text import conflict, normalise
from planner.cache_writes import Entry, GroupUpserts
from planner.settings import PlannerSettings
from planner.vectors import Vectors, collection_name

__all__ = ["Candidate", "Lookup", "SemanticCache", "cache_key", "cache_scope", "cacheable", "cached_answer", "decide"]
log = logging.getLogger(__name__)
FEW_SHOT_ANSWER_CHARS = 1500


def cache_key(scope: str, question: str, response_id: str) -> str:
    """One entry per answered request (a flagged answer never blocks a fresh one of the same question)."""
    raw = "\x00".join([scope, normalise(question), response_id])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Candidate:
    key: str
    question: str
    answer: str
    distance: float
    experts_used: list[str] = field(default_factory=list)
    models_used: list[ModelUse] = field(default_factory=list)

    def entry(self) -> ExactEntry:
        return ExactEntry(cache_key=self.key, question=self.question, answer=self.answer,
                          experts_used=self.experts_used, models_used=self.models_used)


@dataclass
class Lookup:
    hit: Candidate | None = None
    few_shot: list[FewShot] = field(default_factory=list)
    reason: str = "miss"


def decide(candidates: list[Candidate], question: str, hard: float, soft: float, max_few_shot: int) -> Lookup:
    """Pure decision over the nearest entries (sorted or not)."""
    lookup = Lookup()
    for cand in sorted(candidates, key=lambda c: c.distance):
        if lookup.hit is None and cand.distance <= hard:
            objection = conflict(cand.question, question)
            if objection is None:
                lookup.hit, lookup.reason = cand, "hit"
                continue
            log.info("near cache entry %s (distance %.3f) rejected: %s", cand.key, cand.distance, objection)
        if cand.distance <= soft and len(lookup.few_shot) < max_few_shot:
            lookup.few_shot.append(FewShot(question=cand.question, answer=cand.answer[:FEW_SHOT_ANSWER_CHARS],
                                           distance=max(cand.distance, 0.0)))
    if lookup.hit is None and lookup.few_shot:
        lookup.reason = "few_shot"
    return lookup


def cacheable(answer: Answer) -> bool:
    return bool(answer.cache_key and not answer.cache_hit and answer.error is None
                and answer.finish_reason == "stop" and answer.content.strip() and not answer.missing
                and not answer.tool_calls)


def cached_answer(request: ChatRequest, hit: Candidate, question: str) -> Answer:
    """The Answer of a hard hit: no model call, no tokens."""
    return exact_cache.cached_answer(request, hit.entry(), question)


class PendingEntry(BaseModel):
    scope: str
    tenant_id: str
    mode: str
    question: str


class SemanticCache:
    def __init__(self, vectors: Vectors, redis: Redis, settings: PlannerSettings) -> None:
        self.vectors = vectors
        self.redis = redis
        self.settings = settings
        self.name = collection_name("moe-cache", settings.topic_namespace)
        self._pending = f"planner:cachectx:{settings.topic_namespace}"
        self._early_flags = f"planner:cacheflag:{settings.topic_namespace}"
        self.exact = ExactAnswers(redis, settings.topic_namespace, settings.cache_ttl_s)  # the gateway's repeats
        self._writes = GroupUpserts()  # concurrent stores share one Chroma upsert

    @asynccontextmanager
    async def _collection(self) -> AsyncIterator[Any]:
        """The cache collection; after a failure the handle is dropped, so a deleted collection is re-created."""
        try:
            yield await self.vectors.collection(self.name)
        except Exception:
            self.vectors.forget(self.name)
            raise

    async def lookup(self, scope: str, question: str) -> Lookup:
        async with self._collection() as collection:
            return await self._lookup(collection, scope, question)

    async def _lookup(self, collection: Any, scope: str, question: str) -> Lookup:
        s = self.settings
        [vector] = await self.vectors.embed([normalise(question)])
        where = {"$and": [{"scope": scope}, {"flagged": False}, {"created_at": {"$gte": time.time() - s.cache_ttl_s}}]}
        found = await collection.query(query_embeddings=[vector], n_results=max(s.cache_few_shot_max, 1) + 3,
                                       where=where, include=["distances", "metadatas"])
        candidates = [_candidate(key, meta, dist) for key, meta, dist in
                      zip(found["ids"][0], found["metadatas"][0], found["distances"][0], strict=True)]
        lookup = decide(candidates, question, s.cache_hard_threshold, s.cache_soft_threshold, s.cache_few_shot_max)
        SEMANTIC_CACHE.labels("lookup", lookup.reason).inc()
        return lookup

    async def remember(self, key: str, scope: str, request: ChatRequest, question: str) -> None:
        """Note what the answer of this plan will be cached under (the Answer carries only the key); in the
        same round trip, share the question's vector (embedded by the lookup) with graph-rag."""
        entry = PendingEntry(scope=scope, tenant_id=request.tenant_id, mode=request.mode, question=question)
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(f"{self._pending}:{key}", entry.model_dump_json(), ex=self.settings.cache_pending_ttl_s)
        text, vector = self.vectors.embedded(question)
        if vector is not None:  # not embedded (e.g. the lookup failed): graph-rag embeds it itself
            question_vectors.share(pipe, self.settings.topic_namespace, text, vector)
        await pipe.execute()

    async def store(self, answer: Answer) -> bool:
        """Cache a good answer under its key; True when written. Idempotent (upsert by key)."""
        s = self.settings
        if not cacheable(answer) or not s.cache_min_answer_chars <= len(answer.content) <= s.cache_max_answer_chars:
            return False  # (the original caches answers of more than 150 characters only)
        pending_key = f"{self._pending}:{answer.cache_key}"
        pipe = self.redis.pipeline(transaction=False)  # one round trip: what to store, and whether it was rated
        pipe.get(pending_key)
        pipe.exists(f"{self._early_flags}:{answer.cache_key}")
        raw, flagged = await pipe.execute()
        if raw is None:
            return False  # not planned as cacheable here, already stored, or waited too long
        try:
            entry = PendingEntry.model_validate_json(raw)
        except ValidationError:
            return False
        if entry.tenant_id != answer.tenant_id:
            log.warning("answer %s: tenant differs from its plan's; not cached", answer.response_id)
            return False
        if flagged:
            await self.redis.delete(pending_key)  # rated 1-2 before it was stored: never cache it
            return False
        normalised = normalise(entry.question)
        [vector] = await self.vectors.embed([normalised])
        metadata: dict[str, Any] = {
            "scope": entry.scope, "tenant_id": entry.tenant_id, "mode": entry.mode, "question": entry.question,
            "answer": answer.content, "experts_used": json.dumps(answer.experts_used),
            "models_used": json.dumps([m.model_dump() for m in answer.models_used]),
            "response_id": answer.response_id, "created_at": time.time(), "flagged": False,
        }
        async with self._collection() as collection:
            await self._writes.upsert(collection, Entry(str(answer.cache_key), vector, normalised, metadata))
            pipe = self.redis.pipeline(transaction=False)  # one round trip: done, the exact repeat, sweep due?
            pipe.delete(pending_key)
            self.exact.put_in(pipe, entry.scope, ExactEntry(
                cache_key=str(answer.cache_key), question=entry.question, answer=answer.content,
                experts_used=answer.experts_used, models_used=answer.models_used))
            pipe.set(self._sweep_key, "1", nx=True, ex=3600)
            sweep_due = (await pipe.execute())[-1]
            SEMANTIC_CACHE.labels("store", "stored").inc()
            if sweep_due:
                await self._sweep(collection)
        return True

    async def flag(self, feedback: Feedback) -> bool:
        """Negative feedback (1-2) flags the entry the answer came from or was stored as."""
        if feedback.rating > 2 or not feedback.cache_key:
            return False
        async with self._collection() as collection:
            return await self._flag(collection, feedback, feedback.cache_key)

    async def _flag(self, collection: Any, feedback: Feedback, key: str) -> bool:
        found = await collection.get(ids=[key], include=["metadatas"])
        if not found["ids"]:  # not stored yet (the rating overtook the answer): refuse it when it comes
            await self.redis.set(f"{self._early_flags}:{key}", feedback.tenant_id,
                                 ex=self.settings.cache_pending_ttl_s)
            return False
        metadata = dict(found["metadatas"][0] or {})
        if metadata.get("tenant_id") != feedback.tenant_id:
            log.warning("feedback %s: entry of another tenant, not flagged", feedback.response_id)
            return False
        await self.exact.drop(str(metadata.get("scope", "")), str(metadata.get("question", "")))
        if not metadata.get("flagged"):
            metadata["flagged"] = True
            metadata["flagged_by"] = feedback.response_id
            await collection.update(ids=[key], metadatas=[metadata])
            SEMANTIC_CACHE.labels("flag", "flagged").inc()
        return True

    @property
    def _sweep_key(self) -> str:
        return f"planner:cache-sweep:{self.settings.topic_namespace}"

    async def _sweep(self, collection: Any) -> None:
        """At most once per hour per namespace (the caller took the hour's `_sweep_key`): delete expired
        entries."""
        await collection.delete(where={"created_at": {"$lt": time.time() - self.settings.cache_ttl_s}})


def _candidate(key: str, meta: Any, distance: float) -> Candidate:
    meta = dict(meta or {})
    try:
        experts = [str(e) for e in json.loads(meta.get("experts_used") or "[]")]
        models = [ModelUse.model_validate(m) for m in json.loads(meta.get("models_used") or "[]")]
    except (ValueError, ValidationError):
        experts, models = [], []
    return Candidate(key=key, question=str(meta.get("question", "")), answer=str(meta.get("answer", "")),
                     distance=float(distance), experts_used=experts, models_used=models)
