"""Semantic cache: earlier answers found by the meaning of the question (its embedding).

Entries embed the NORMALISED QUESTION and keep the answer beside it (the original system embedded the answer
and searched with the question, so it could barely hit). An entry is scoped by tenant, mode and system prompt
(`scope`). Lookup: the nearest unflagged, unexpired entries of the scope; distance <= hard threshold and no
guard objection (planner.cache_text.conflict) is a hit, answered with no model call; up to the soft threshold
the entries become few-shot examples.

Where the entries live: the compacted topic `cache-entries` is the source of truth (one message per entry,
keyed by cache_key; a flag is the entry again, flagged). Every planner replica reads it whole into an
in-memory index (planner.cache_index; rebuilt from the topic at start, before the replica plans) and looks
up there, in process; the replica that publishes an entry (the answer's or the rating's handler) then writes it
into Chroma (one collection per topic namespace), the durable, queryable copy, off the request path.

Writing: when the planner plans a cacheable request it remembers (Redis) the question, scope and the question's
vector under the plan's `cache_key` (and shares the vector with graph-rag: moe_core.knowledge.question_vectors); the
merger
copies the key onto the Answer; the planner consumes `answers` and publishes good answers (no error, not a
hit, finish stop) to the cache topic with the remembered vector (whichever replica consumes the answer, the
question is not embedded again), and also writes them as exact repeats in Redis for the gateway
(moe_core.llm.exact_cache). Negative feedback (rating 1-2) flags the entry and removes the exact repeat.

The embedding (MOE_CACHE_EMBEDDING): by default the static model distilled from the packaged MiniLM
(moe_core.knowledge.static_embedding; ~0.1 ms of CPU a question, computed inline, never carried: the lookup, the
static router and the store ask `StaticEmbedder.one`, which computes it once and remembers it), with thresholds of
its own (MOE_CACHE_STATIC_HARD_THRESHOLD / _SOFT_); `minilm` runs MiniLM
for the cache too (its vector then shared with the router and carried to the store). Either way MiniLM stays the
router's and graph-rag's: a complex question is not routed, so with the static cache the planner runs no MiniLM for
it, and graph-rag embeds the question only when the scope has documents. Each entry names the model of its vector;
the index and the Chroma copy (`moe-cache-static-<ns>` beside `moe-cache-<ns>`) hold one model's vectors
(planner.cache_index: another model's entries are embedded again, or left out).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis

import moe_core.knowledge.question_vectors as question_vectors
from moe_core.contracts import Answer, CacheEntry, ChatRequest, Feedback, FewShot, ModelUse
from moe_core.knowledge.embeddings import MODEL_ID
from moe_core.knowledge.static_embedding import MODEL_ID as STATIC_MODEL_ID
from moe_core.knowledge.static_embedding import StaticEmbedder, get_static_embedder
from moe_core.llm import exact_cache
from moe_core.llm.exact_cache import ExactAnswers, ExactEntry, cache_scope
from moe_core.runtime import redis_batch
from moe_core.runtime.bus import Bus
from moe_core.runtime.observability.metrics import SEMANTIC_CACHE
from planner.cache_index import CacheIndex, decode_vector, encode_vector
from planner.cache_text import conflict, normalise
from planner.cache_writes import Entry, GroupUpserts, SharedChecks
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
    completion_tokens: int | None = None

    def entry(self) -> ExactEntry:
        return ExactEntry(cache_key=self.key, question=self.question, answer=self.answer,
                          experts_used=self.experts_used, models_used=self.models_used,
                          completion_tokens=self.completion_tokens)


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
            # per candidate: DEBUG (the bench's full questions, the same template in another year, logged ~5 lines a
            # request at INFO, each formatted and written by the planner on the request's path; issue 52)
            log.debug("near cache entry %s (distance %.3f) rejected: %s", cand.key, cand.distance, objection)
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
    vector: str | None = None  # the normalised question's embedding (float32, base64), as the lookup computed it
    model: str | None = None  # the model that computed it: a vector of another model is not stored

    def carried(self, model: str = MODEL_ID) -> np.ndarray | None:
        """The remembered vector, if it is `model`'s and well formed; else None (then the store embeds)."""
        if self.vector is None or self.model != model:
            return None
        decoded = question_vectors.decode(self.vector)
        return None if decoded is None else np.asarray(decoded, dtype=np.float32)


class SemanticCache:
    """Lookups from this replica's in-memory index (planner.cache_index) of the cache topic; stores and flags
    published to that topic, then written into Chroma by their handler (`_persist`), off the request path."""

    def __init__(self, vectors: Vectors, redis: Redis, settings: PlannerSettings, bus: Bus) -> None:
        self.vectors = vectors
        self.redis = redis
        self.settings = settings
        self.bus = bus
        self.static: StaticEmbedder | None = get_static_embedder() if settings.cache_embedding == "static" else None
        self.model = STATIC_MODEL_ID if self.static else MODEL_ID
        self.hard, self.soft = ((settings.cache_static_hard_threshold, settings.cache_static_soft_threshold)
                                if self.static else (settings.cache_hard_threshold, settings.cache_soft_threshold))
        self.index = CacheIndex(settings.cache_index_tenant_max_mb * 1024 * 1024, self.model,
                                self.static.embed if self.static else None)
        self.name = collection_name("moe-cache-static" if self.static else "moe-cache", settings.topic_namespace)
        self._pending = f"planner:cachectx:{settings.topic_namespace}"
        self._early_flags = f"planner:cacheflag:{settings.topic_namespace}"
        self.exact = ExactAnswers(redis, settings.topic_namespace, settings.cache_ttl_s)  # the gateway's repeats
        self._writes = GroupUpserts(linger_s=settings.cache_write_linger_ms / 1000)  # concurrent writes share upserts
        self._checks = SharedChecks(redis, self._sweep_key, self._early_flags, self._pending)  # and the trip after

    @asynccontextmanager
    async def _collection(self) -> AsyncIterator[Any]:
        """The cache collection; after a failure the handle is dropped, so a deleted collection is re-created."""
        try:
            yield await self.vectors.collection(self.name)
        except Exception:
            self.vectors.forget(self.name)
            raise

    async def warm(self) -> None:
        """Load the static table (built once, on first use, if the install did not: about a minute of CPU), all its
        pages read now unless MOE_CACHE_STATIC_TABLE_RESIDENT is false."""
        if self.static is not None:
            await asyncio.to_thread(self.static.load, self.settings.cache_static_table_resident)

    async def embed(self, text: str) -> np.ndarray:
        """The cache model's vector of the normalised `text`: the static one inline (less CPU than a thread hop),
        MiniLM's off the loop (and kept for the router)."""
        if self.static is not None:  # the router's and the store's embedding of the same text too (`one`)
            vector: np.ndarray = self.static.one(text)
            return vector
        [vector] = await self.vectors.embed_array([text])
        return vector

    async def lookup(self, scope: str, question: str) -> Lookup:
        """The nearest unflagged, unexpired entries of the scope, from the index; the decision is `decide`'s."""
        s = self.settings
        await self.index.loaded.wait()  # a replica starting up answers from a complete index only
        vector = await self.embed(normalise(question))
        found = self.index.nearest(scope, vector, max(s.cache_few_shot_max, 1) + 3, time.time() - s.cache_ttl_s)
        lookup = decide([_candidate(entry, dist) for entry, dist in found], question, self.hard, self.soft,
                        s.cache_few_shot_max)
        if lookup.hit is not None:
            self.index.touch(lookup.hit.key)
        SEMANTIC_CACHE.labels("lookup", lookup.reason).inc()
        return lookup

    async def remember(self, key: str, scope: str, request: ChatRequest, question: str) -> None:
        """Note what the answer of this plan will be cached under (the Answer carries only the key); in the
        same round trip, share the question's MiniLM vector (if the lookup or the router embedded it) with
        graph-rag. With the MiniLM cache the vector is kept with the pending entry too, so the replica that stores
        the answer does not embed the question again (a static vector is not carried: the store embeds it)."""
        text, vector = self.vectors.embedded(question)
        entry = PendingEntry(scope=scope, tenant_id=request.tenant_id, mode=request.mode, question=question)
        if vector is not None and self.static is None:
            entry.vector, entry.model = encode_vector(vector), MODEL_ID
        pending, ttl = f"{self._pending}:{key}", self.settings.cache_pending_ttl_s
        namespace = self.settings.topic_namespace

        def write(pipe: Any) -> None:
            pipe.set(pending, entry.model_dump_json(), ex=ttl)
            if vector is not None:  # not embedded (e.g. the lookup failed): graph-rag embeds it itself
                question_vectors.share(pipe, namespace, text, vector)
        await redis_batch.send(self.redis, write)  # in the planner's handler: with its stored outcome

    async def store(self, answer: Answer) -> bool:
        """Cache a good answer under its key (published to the cache topic); True when written. Idempotent."""
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
            pending = PendingEntry.model_validate_json(raw)
        except ValidationError:
            return False
        if pending.tenant_id != answer.tenant_id:
            log.warning("answer %s: tenant differs from its plan's; not cached", answer.response_id)
            return False
        if flagged:
            await self.redis.delete(pending_key)  # rated 1-2 before it was stored: never cache it
            return False
        normalised = normalise(pending.question)
        vector = pending.carried(self.model)
        if vector is None:  # static (not carried), remembered before the lookup could embed it, or by another model
            vector = await self.embed(normalised)
        entry = CacheEntry(
            cache_key=str(answer.cache_key), scope=pending.scope, tenant_id=pending.tenant_id, mode=pending.mode,
            question=pending.question, normalised=normalised, vector=encode_vector(vector), model=self.model,
            answer=answer.content,
            experts_used=answer.experts_used, models_used=answer.models_used, response_id=answer.response_id,
            created_at=time.time(), completion_tokens=answer.usage.completion_tokens)
        await self._publish(entry)
        pipe = self.redis.pipeline(transaction=False)  # the gateway's exact repeat, not held up by Chroma's write
        self.exact.put_in(pipe, entry.scope, _exact(entry))
        await pipe.execute()
        await self._persist(entry)  # deletes the pending entry once Chroma has it: a redelivery writes it again
        SEMANTIC_CACHE.labels("store", "stored").inc()
        return True

    def on_entry(self, entry: CacheEntry) -> None:
        """Every message of the cache topic, in every replica (group-less, from the start): the index."""
        self.index.apply(entry)

    async def _persist(self, entry: CacheEntry) -> None:
        """Chroma's copy of an entry this replica published (upsert by key, in a batch with the answers and flags
        handled meanwhile): written by the answer's (the rating's) handler, not by a consumer of the cache topic,
        which cost the planner a message and a consumer of its own per entry (issue 52). A failure is transient: the
        answer is redelivered (its pending entry is deleted only after the upsert), the collection re-created if it
        was deleted. A rating that found the entry nowhere yet (its early flag) flags it now."""
        try:
            async with self._collection() as collection:
                await self._writes.upsert(collection, Entry(entry.cache_key, decode_vector(entry.vector).tolist(),
                                                            entry.normalised, chroma_metadata(entry)))
                sweep_due, early = await self._checks.ask(entry.cache_key)  # one round trip for the batch
                if sweep_due:
                    await self._sweep(collection)
        except Exception as exc:
            raise ConnectionError(f"Chroma write of {entry.cache_key} failed: {exc}") from exc
        if not entry.flagged and early is not None and _text(early) == entry.tenant_id:
            await self._flag_entry(entry, None)  # rated before it was stored (the rating's request unknown)

    async def flag(self, feedback: Feedback) -> bool:
        """Negative feedback (1-2) flags the entry the answer came from or was stored as: the flagged entry is
        published (every index drops it; Chroma marks it), its exact repeat deleted."""
        if feedback.rating > 2 or not feedback.cache_key:
            return False
        key = feedback.cache_key
        entry = self.index.get(key)
        if entry is None:  # not in this replica's index (evicted, expired, or not stored yet): the durable copy
            async with self._collection() as collection:
                found = await collection.get(ids=[key], include=["metadatas", "embeddings", "documents"])
            if not found["ids"]:  # not stored yet (the rating overtook the answer): refuse it when it comes
                await self.redis.set(f"{self._early_flags}:{key}", feedback.tenant_id,
                                     ex=self.settings.cache_pending_ttl_s)
                return False
            entry = entry_of(key, found["metadatas"][0], found["embeddings"][0], found["documents"][0])
        if entry.tenant_id != feedback.tenant_id:
            log.warning("feedback %s: entry of another tenant, not flagged", feedback.response_id)
            return False
        if not entry.flagged:
            await self._flag_entry(entry, feedback.response_id)
        else:
            await self.exact.drop(entry.scope, entry.question)
        return True

    async def _flag_entry(self, entry: CacheEntry, by: str | None) -> None:
        await self.exact.drop(entry.scope, entry.question)  # before the entry: the gateway stops serving it first
        flagged = entry.model_copy(update={"flagged": True, "flagged_by": by})
        await self._publish(flagged)
        await self._persist(flagged)
        SEMANTIC_CACHE.labels("flag", "flagged").inc()

    async def _publish(self, entry: CacheEntry) -> None:
        await self.bus.publish_keyed(entry, self.bus.topics.cache_entries, entry.cache_key)
        self.index.apply(entry)  # this replica reads its own write at once (the topic's copy applies it again)

    @property
    def _sweep_key(self) -> str:
        return f"planner:cache-sweep:{self.settings.topic_namespace}"

    async def _sweep(self, collection: Any) -> None:
        """At most once per hour per namespace (the caller took the hour's `_sweep_key`): delete expired
        entries from Chroma (the index ignores them by age; the topic deletes them by its retention)."""
        await collection.delete(where={"created_at": {"$lt": time.time() - self.settings.cache_ttl_s}})


def chroma_metadata(entry: CacheEntry) -> dict[str, Any]:
    """The Chroma copy's metadata of an entry (what lookups filtered on before the index, and what an
    operator queries)."""
    metadata: dict[str, Any] = {
        "scope": entry.scope, "tenant_id": entry.tenant_id, "mode": entry.mode, "question": entry.question,
        "answer": entry.answer, "experts_used": json.dumps(entry.experts_used),
        "models_used": json.dumps([m.model_dump() for m in entry.models_used]),
        "response_id": entry.response_id, "created_at": entry.created_at, "flagged": entry.flagged,
    }
    if entry.flagged_by:
        metadata["flagged_by"] = entry.flagged_by
    if entry.model:
        metadata["model"] = entry.model
    return metadata


def entry_of(key: str, meta: Any, embedding: Any, document: Any) -> CacheEntry:
    """An entry from its Chroma copy (a rating of an entry this replica's index no longer holds)."""
    meta = dict(meta or {})
    experts, models = _lists(meta)
    return CacheEntry(
        cache_key=key, scope=str(meta.get("scope", "")) or "-", tenant_id=str(meta.get("tenant_id", "")) or "-",
        mode=str(meta.get("mode", "")), question=str(meta.get("question", "")), normalised=str(document or ""),
        vector=encode_vector(embedding), answer=str(meta.get("answer", "")), experts_used=experts,
        models_used=models, response_id=str(meta.get("response_id", "")),
        created_at=float(meta.get("created_at", 0.0)), flagged=bool(meta.get("flagged", False)),
        flagged_by=meta.get("flagged_by"), model=meta.get("model"))


def _lists(meta: dict[str, Any]) -> tuple[list[str], list[ModelUse]]:
    try:
        experts = [str(e) for e in json.loads(meta.get("experts_used") or "[]")]
        models = [ModelUse.model_validate(m) for m in json.loads(meta.get("models_used") or "[]")]
    except (ValueError, ValidationError):
        return [], []
    return experts, models


def _exact(entry: CacheEntry) -> ExactEntry:
    return ExactEntry(cache_key=entry.cache_key, question=entry.question, answer=entry.answer,
                      experts_used=entry.experts_used, models_used=entry.models_used,
                      completion_tokens=entry.completion_tokens)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _candidate(entry: CacheEntry, distance: float) -> Candidate:
    return Candidate(key=entry.cache_key, question=entry.question, answer=entry.answer, distance=distance,
                     experts_used=list(entry.experts_used), models_used=list(entry.models_used),
                     completion_tokens=entry.completion_tokens)
