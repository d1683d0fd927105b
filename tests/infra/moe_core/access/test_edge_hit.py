"""An exact repeat answered at the edge, on real Redis and Postgres (moe_core.access.edge_hit, gateway.metering):
the check of the live client profiles, the key's limits, the cached answer and its record for feedback in one round
trip before the reply (the usage event published with the Answer, gateway.chat; the record's SET and the profiles'
GET were two more), the hold finished after it in one more; the limits still refuse a hit (429) and write no
record, a stale view of the profiles counts nothing, a hit whose settling failed is charged once by the control
plane's sweeper, and a damaged entry gives its request back and leaves no record (its request then reserved as a
miss, once: not taken for the script's own earlier run, tests/infra/gateway/test_hit_retry.py).
Round trips are counted by a Redis client that counts every command and pipeline it sends."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from control_plane.usage.recorder import UsageRecorder
from gateway.metering import Metering
from gateway.settings import GatewaySettings
from moe_core.access.edge_hit import Hit, RecordHead, Stale
from moe_core.access.keystore import ApiKey, KeyStore
from moe_core.access.limits import Limiter, LimitExceeded, Limits
from moe_core.access.usage_store import UsageStore
from moe_core.contracts import ChatMessage, ChatRequest, ModelUse, deadline_in
from moe_core.llm.answer_records import AnswerRecords
from moe_core.llm.exact_cache import ExactAnswers, ExactEntry, answer_of, cache_scope
from moe_core.llm.inference.live import LiveOverrides
from moe_core.runtime.observability.metrics import REGISTRY
from moe_core.runtime.openai_error import OpenAIError
from tests.support.counting_redis import CountingRedis

pytestmark = pytest.mark.infra
QUESTION = "What is the capital of France?"
TENANT = "t-edge-hit"




@pytest.fixture
async def usage(infra: dict[str, str]) -> AsyncIterator[UsageStore]:
    store = await KeyStore.connect(infra["postgres-control-plane"])  # the usage rows' writer: the control plane
    try:
        yield UsageStore(store.pool)
    finally:
        await store.close()


def _writer(usage: UsageStore) -> UsageRecorder:
    async def opened() -> UsageStore:
        return usage
    return UsageRecorder(opened)  # type: ignore[arg-type]


def _metering(redis: Redis, namespace: str, publish: Any) -> Metering:
    settings = GatewaySettings(topic_namespace=namespace, resume_grace_s=0, settle_orphan_after_s=0)
    return Metering(settings, Limiter(redis, namespace), publish)


def _request(question: str = QUESTION) -> ChatRequest:
    return ChatRequest(response_id=uuid.uuid4().hex, tenant_id=TENANT, deadline_at=deadline_in(30),
                       mode="moe-orchestrator", messages=[ChatMessage(role="user", content=question)])


def _key(limits: Limits) -> ApiKey:
    return ApiKey(id=f"k{uuid.uuid4().hex[:10]}", name="k", role="user", tenant_ids=(TENANT,), limits=limits)


async def _cached(redis: Redis, namespace: str) -> ExactAnswers:
    exact = ExactAnswers(redis, namespace, ttl_s=60)
    await exact.put(cache_scope(_request()) or "", ExactEntry(
        cache_key="entry-1", question=QUESTION, answer="Paris.", experts_used=["general"],
        models_used=[ModelUse(model="m", category="general")]))
    return exact


async def _rows(pool: asyncpg.Pool, key: ApiKey) -> list[tuple[str, int, int, str, str]]:
    rows = await pool.fetch("SELECT response_id, prompt_tokens, completion_tokens, outcome, settled_by "
                            "FROM usage_requests WHERE key_id = $1 ORDER BY response_id", key.id)
    return [tuple(r) for r in rows]  # type: ignore[misc]


def _head(records: AnswerRecords, request: ChatRequest, question: str) -> RecordHead:
    return RecordHead(*records.hit_head(request.response_id, request.tenant_id, question), records.ttl_s)


async def test_an_exact_repeat_costs_one_round_trip_before_the_reply_and_one_after(
        counting: CountingRedis, namespace: str, usage: UsageStore) -> None:
    metering = _metering(counting, namespace, _writer(usage).handle)
    exact = await _cached(counting, namespace)
    records = AnswerRecords(counting, namespace, 3600)
    live = LiveOverrides(counting, namespace)  # no overlay: the profiles of the settings
    published = _writer(usage)  # the usage topic's reader (the gateway publishes the event with the Answer)
    key = _key(Limits(requests_per_minute=3, tokens_per_day=10**6))
    answered = []
    for _ in range(3):
        request = _request("  what's the capital of france ")  # the same words after normalisation
        lookup = exact.lookup(request)
        assert lookup is not None
        before = counting.counts[0]
        found = await metering.reserve(key, request, "moe-orchestrator", lookup[0],  # the profiles checked, limits,
                                       record=_head(records, request, lookup[1]),  # the answer, its record
                                       overlay=(live.key, live.digest()))
        assert isinstance(found, Hit)
        answer = answer_of(request, found.entry, lookup[1])
        assert answer is not None and (answer.content, answer.cache_hit, answer.cache_key) == ("Paris.", True,
                                                                                                "entry-1")
        await published.handle(metering.hit_usage(request.response_id, found.hold))  # with the Answer
        on_path = counting.counts[0] - before
        assert await records.get(request.response_id) == records.record_of(answer)  # as the Answer's own
        before += 1  # that read
        assert await metering.settle_hit(request.response_id, found.hold)  # after the reply
        answered.append((request.response_id, on_path, counting.counts[0] - before - on_path))
    # the first call of a script loads it (a second and third round trip, once per Redis); then 1 + 1
    assert [(on_path, after) for _, on_path, after in answered[1:]] == [(1, 1), (1, 1)]

    record = await records.get(answered[0][0])
    assert record is not None and (record.tenant_id, record.cache_key, record.question) == (
        TENANT, "entry-1", "what's the capital of france")
    used = await metering.limiter.used("key", key.id)
    assert (used["requests_per_minute"], used["tokens_per_minute"], used["tokens_per_day"]) == (3, 0, 0)
    assert (await metering.limiter.used("tenant", TENANT))["requests_per_minute"] >= 3  # the tenant's too
    assert sorted(await _rows(usage.pool, key)) == sorted((rid, 0, 0, "answered", "owner") for rid, *_ in answered)
    assert await metering.settlements.due(10**12, 100) == []  # nothing left for the sweeper

    refused_request = _request()
    with pytest.raises(LimitExceeded) as refused:  # the key's fourth request this minute, a hit or not
        await metering.reserve(key, refused_request, "moe-orchestrator", exact.lookup(refused_request)[0],  # type: ignore[index]
                               record=_head(records, refused_request, QUESTION), overlay=(live.key, live.digest()))
    assert (refused.value.status, refused.value.scope, refused.value.limit) == (429, "key", "requests_per_minute")
    assert refused.value.body()["error"]["code"] == "rate_limit_exceeded"
    assert (await metering.limiter.used("key", key.id))["requests_per_minute"] == 3  # nothing counted
    assert await records.get(refused_request.response_id) is None  # nor recorded


async def test_a_stale_view_of_the_profiles_counts_nothing_and_gets_the_overlay(
        redis: Redis, namespace: str, usage: UsageStore) -> None:
    metering = _metering(redis, namespace, _writer(usage).handle)
    exact = await _cached(redis, namespace)
    records = AnswerRecords(redis, namespace, 3600)
    live = LiveOverrides(redis, namespace)
    seen = (live.key, live.digest())  # no overlay yet
    overlay = '{"version": 3, "profiles": {}}'
    await redis.set(live.key, overlay)  # the console's change
    key = _key(Limits(requests_per_minute=10))
    request = _request()
    found = await metering.reserve(key, request, "moe-orchestrator", exact.lookup(request)[0],  # type: ignore[index]
                                   record=_head(records, request, QUESTION), overlay=seen)
    assert found == Stale(overlay)
    assert (await metering.limiter.used("key", key.id))["requests_per_minute"] == 0
    assert await records.get(request.response_id) is None and await metering.settlements.due(10**12, 100) == []
    assert live.seen(found.overlay) is not None and live.digest() != seen[1]
    found = await metering.reserve(key, request, "moe-orchestrator", exact.lookup(request)[0],  # type: ignore[index]
                                   record=_head(records, request, QUESTION), overlay=(live.key, live.digest()))
    assert isinstance(found, Hit)  # shaped again with the overlay in force: answered
    assert (await metering.limiter.used("key", key.id))["requests_per_minute"] == 1


async def test_a_hit_needs_room_for_its_estimate_in_every_token_budget(
        redis: Redis, namespace: str, usage: UsageStore) -> None:
    metering = _metering(redis, namespace, _writer(usage).handle)
    exact = await _cached(redis, namespace)
    key = _key(Limits(tokens_per_day=1))  # spent: less room than any request's estimate
    request = _request()
    with pytest.raises(LimitExceeded) as refused:
        await metering.reserve(key, request, "moe-orchestrator", exact.lookup(request)[0])  # type: ignore[index]
    assert (refused.value.status, refused.value.limit) == (429, "tokens_per_day")
    assert (await metering.limiter.used("key", key.id))["requests_per_minute"] == 0
    assert await metering.settlements.due(10**12, 100) == []  # no hold was opened


async def test_a_hit_whose_settling_failed_is_charged_once_by_the_sweeper(
        redis: Redis, namespace: str, usage: UsageStore) -> None:
    owner = _metering(redis, namespace, _writer(usage).handle)
    sweeper = _metering(redis, namespace, _writer(usage).handle)  # the control plane's settler
    exact = await _cached(redis, namespace)
    key = _key(Limits(requests_per_minute=10))
    request = _request()
    found = await owner.reserve(key, request, "moe-orchestrator", exact.lookup(request)[0])  # type: ignore[index]
    assert isinstance(found, Hit)
    await _writer(usage).handle(owner.hit_usage(request.response_id, found.hold))  # published with the Answer
    cut_off = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)  # Redis gone after the reply
    deferred = _deferred()
    try:
        assert not await _metering(cut_off, namespace, _writer(usage).handle).settle_hit(request.response_id,
                                                                                          found.hold)
    finally:
        await cut_off.aclose()
    assert _deferred() == deferred + 1  # logged and counted
    assert await owner.settlements.due(10**12, 100) == [request.response_id]  # the hold stays, for the sweeper
    # while the owner's lease lasts the sweeper leaves it; once it ran out (deleted here: it lasts 30 s)
    assert not await sweeper.settle_orphan(request.response_id, None)
    await redis.delete(f"{owner.settlements.key(request.response_id)}:lease")
    assert await sweeper.settle_orphan(request.response_id, None)
    assert not await sweeper.settle_orphan(request.response_id, None)  # once
    assert await _rows(usage.pool, key) == [(request.response_id, 0, 0, "answered", "owner")]  # one row
    used = await owner.limiter.used("key", key.id)
    assert (used["requests_per_minute"], used["tokens_per_minute"]) == (1, 0)


async def test_a_damaged_entry_gives_its_request_back(redis: Redis, namespace: str, usage: UsageStore) -> None:
    metering = _metering(redis, namespace, _writer(usage).handle)
    exact = ExactAnswers(redis, namespace, ttl_s=60)
    request = _request()
    lookup = exact.lookup(request)
    assert lookup is not None
    await redis.set(lookup[0], "{not json")
    key = _key(Limits(requests_per_minute=10))
    records = AnswerRecords(redis, namespace, 3600)
    head = _head(records, request, lookup[1])
    found = await metering.reserve(key, request, "moe-orchestrator", lookup[0], record=head)
    assert isinstance(found, Hit) and answer_of(request, found.entry, lookup[1]) is None
    assert await records.get(request.response_id) is None  # unreadable: the script writes no record
    await redis.set(head.key, "{}")  # as a readable entry that does not fit the request would have left it
    await metering.withdraw_hit(request.response_id, found.hold, head.key)
    assert (await metering.limiter.used("key", key.id))["requests_per_minute"] == 0
    assert not await redis.exists(head.key)  # nobody rates an answer that was not given
    assert await _rows(usage.pool, key) == []
    assert await metering.settlements.due(10**12, 100) == []
    for _ in range(2):  # then reserved as a miss (gateway.chat), and again as after a reply lost (gateway.metering)
        assert await metering.reserve(key, request, "moe-orchestrator") is None
    held = (await metering.settlements.holds([request.response_id]))[request.response_id]
    counted = await redis.mget([name for name, _, _ in held.counters if f":key:{key.id}:" in name])  # its windows
    assert held.tokens > 0 and sorted(int(c) for c in counted) == [1, held.tokens, held.tokens, held.tokens]


def _deferred() -> float:
    return REGISTRY.get_sample_value("moe_gateway_exact_cache_total", {"outcome": "settle_deferred"}) or 0.0


async def test_redis_gone_is_a_503_that_asks_to_retry_not_a_500(namespace: str, usage: UsageStore) -> None:
    """The profiles' check rides in the limits script: Redis gone fails that script as it failed before (the
    profiles' own GET was logged and passed over), a 503 limits_unavailable, never an unchecked request."""
    cut_off = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    try:
        metering = _metering(cut_off, namespace, _writer(usage).handle)
        records, live = AnswerRecords(cut_off, namespace, 3600), LiveOverrides(cut_off, namespace)
        request = _request()
        lookup = ExactAnswers(cut_off, namespace, ttl_s=60).lookup(request)
        assert lookup is not None
        with pytest.raises(OpenAIError) as failed:
            await metering.reserve(_key(Limits(requests_per_minute=10)), request, "moe-orchestrator", lookup[0],
                                   record=_head(records, request, lookup[1]), overlay=(live.key, live.digest()))
        assert (failed.value.status, failed.value.body()["error"]["code"]) == (503, "limits_unavailable")
    finally:
        await cut_off.aclose()
