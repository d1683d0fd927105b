"""A request's usage is settled exactly once fleet-wide (moe_core.access.settlement, gateway.metering), on real Redis
and Postgres: two gateway replicas' meterings (same namespace) race to settle one request, a settler that
dies after its claim or after its usage was written is replaced without a second charge, a request that never
entered the fleet gives its reservation back. Each settled charge goes straight to the control plane's writer
(control_plane.usage.recorder, as its role); the path over the `usage` topic is tests/infra/gateway/test_usage_topic.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from control_plane.usage.recorder import UsageRecorder
from gateway.metering import Metering
from gateway.settings import GatewaySettings
from moe_core.access.keystore import ApiKey, KeyStore
from moe_core.access.limits import Limiter, Limits
from moe_core.access.settlement import Settlements
from moe_core.access.usage_store import UsageStore
from moe_core.contracts import Answer, ChatMessage, ChatRequest, Usage, deadline_in
from moe_core.llm.token_budget import BudgetExhausted, TokenBudgets

pytestmark = pytest.mark.infra


@pytest.fixture
async def usage(infra: dict[str, str]) -> AsyncIterator[UsageStore]:
    store = await KeyStore.connect(infra["postgres-control-plane"])  # the usage rows' writer: the control plane
    try:
        yield UsageStore(store.pool)
    finally:
        await store.close()


def _replicas(redis: Redis, namespace: str, usage: UsageStore) -> tuple[Metering, Metering]:
    settings = GatewaySettings(topic_namespace=namespace, resume_grace_s=0, settle_orphan_after_s=0)
    writer = UsageRecorder(_opened(usage))  # each charge written as the usage topic's consumer writes it
    return (Metering(settings, Limiter(redis, namespace), writer.handle),
            Metering(settings, Limiter(redis, namespace), writer.handle))


def _opened(usage: UsageStore) -> Any:
    async def store() -> UsageStore:
        return usage
    return store


async def _reserve(metering: Metering) -> tuple[ApiKey, ChatRequest]:
    key = ApiKey(id=f"k{uuid.uuid4().hex[:10]}", name="k", role="user", tenant_ids=("t-settle",),
                 limits=Limits(tokens_per_month=10**9))
    request = ChatRequest(response_id=uuid.uuid4().hex, tenant_id="t-settle", deadline_at=deadline_in(30),
                          mode="moe-orchestrator", messages=[ChatMessage(role="user", content="What is 2+2?")])
    await metering.reserve(key, request, "moe-orchestrator")
    return key, request


async def _rows(pool: asyncpg.Pool, key: ApiKey) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The key's rows in usage_requests (one per settled request) and usage_daily."""
    requests = await pool.fetch("SELECT * FROM usage_requests WHERE key_id = $1", key.id)
    daily = await pool.fetch("SELECT * FROM usage_daily WHERE key_id = $1", key.id)
    return [dict(r) for r in requests], [dict(r) for r in daily]


async def _lease_gone(settlements: Settlements, response_id: str) -> None:
    for _ in range(200):
        if not await settlements.redis.exists(f"{settlements.key(response_id)}:lease"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the lease never ran out")


async def test_replicas_racing_to_settle_one_request_charge_it_once(
        redis: Redis, namespace: str, usage: UsageStore) -> None:
    owner, other = _replicas(redis, namespace, usage)
    key, request = await _reserve(owner)
    limiter = owner.limiter
    assert (await limiter.used("key", key.id))["tokens_per_month"] > 1000  # the cap is held
    answer = Answer(**request.child_fields(), mode=request.mode, content="4",
                    usage=Usage(prompt_tokens=12, completion_tokens=3))
    # the owner's subscriber, a replica that resumed the stream, the sweeper with and without the Answer
    results = await asyncio.gather(owner.settle(answer), other.settle(answer, adopted=True),
                                   other.settle_orphan(request.response_id, answer),
                                   other.close(request.response_id, "spent", "sweeper"))
    assert all(r.content == "4" for r in results[:2])
    await asyncio.gather(owner.settled(), other.settled())  # the edge's charges run after their replies
    rows, daily = await _rows(usage.pool, key)
    assert len(rows) == 1 and len(daily) == 1 and daily[0]["requests"] == 1
    charged = rows[0]["prompt_tokens"] + rows[0]["completion_tokens"]
    assert (daily[0]["prompt_tokens"], daily[0]["completion_tokens"]) == (rows[0]["prompt_tokens"],
                                                                          rows[0]["completion_tokens"])
    assert (await limiter.used("key", key.id))["tokens_per_month"] == charged  # the cap replaced by the usage
    if rows[0]["outcome"] == "answered":
        assert charged == 15
    assert await owner.settlements.due(request.deadline_at.timestamp() + 3600, 100) == []  # nothing left to sweep
    assert await TokenBudgets(redis, namespace).left(request.response_id) == 0  # closed: no late model call runs
    await other.settle_orphan(request.response_id, None)  # later settlers change nothing
    assert await _rows(usage.pool, key) == (rows, daily)


async def test_a_settler_that_died_midway_is_replaced_without_a_second_charge(
        redis: Redis, namespace: str, usage: UsageStore) -> None:
    owner, sweeper = _replicas(redis, namespace, usage)
    settlements = owner.settlements
    key1, died_after_claim = await _reserve(owner)
    key2, died_after_row = await _reserve(owner)
    budgets = TokenBudgets(redis, namespace)
    assert await budgets.take(died_after_claim.response_id, 40, 10) == 10  # a model call held 50 of its budget

    first = await settlements.claim(died_after_claim.response_id, "spent", outcome="abandoned", lease_s=1.5)
    assert first.state == "mine" and (first.prompt + first.completion, first.outcome) == (50, "abandoned")
    # ... and the owner died. While its lease lasts nobody else settles; then the sweeper does, the same usage.
    assert (await settlements.claim(died_after_claim.response_id, "answer", 1, 1)).state == "busy"
    claim = await settlements.claim(died_after_row.response_id, "answer", 20, 5, lease_s=1.5)
    hold = claim.hold
    assert hold is not None
    assert await usage.record(tenant_id=hold.tenant_id, key_id=hold.key_id, mode=hold.mode, model=hold.model,
                              requests=1, prompt_tokens=20, completion_tokens=5, cost_micros=None,
                              response_id=died_after_row.response_id)  # ... its row written, then it died
    due = max(died_after_claim.deadline_at, died_after_row.deadline_at).timestamp() + 60
    assert set(await settlements.due(due, 10)) == {died_after_claim.response_id, died_after_row.response_id}
    await _lease_gone(settlements, died_after_claim.response_id)
    await _lease_gone(settlements, died_after_row.response_id)
    assert await sweeper.settle_orphan(died_after_claim.response_id, None)
    late = Answer(**died_after_row.child_fields(), mode="moe-orchestrator", usage=Usage(prompt_tokens=99))
    assert await sweeper.settle_orphan(died_after_row.response_id, late)  # the first claim's usage is kept

    rows, daily = await _rows(usage.pool, key1)
    assert [(r["prompt_tokens"] + r["completion_tokens"], r["outcome"], r["settled_by"]) for r in rows] == \
        [(50, "abandoned", "sweeper")]
    assert daily[0]["requests"] == 1 and (await owner.limiter.used("key", key1.id))["tokens_per_month"] == 50
    rows, daily = await _rows(usage.pool, key2)
    assert len(rows) == 1 and (daily[0]["requests"], daily[0]["prompt_tokens"], daily[0]["completion_tokens"]) \
        == (1, 20, 5)
    assert (await owner.limiter.used("key", key2.id))["tokens_per_month"] == 25
    assert await settlements.due(due, 10) == []


async def test_a_request_that_never_entered_the_fleet_gives_its_reservation_back(
        redis: Redis, namespace: str, usage: UsageStore) -> None:
    owner, _ = _replicas(redis, namespace, usage)
    key, request = await _reserve(owner)
    owner.release(request.response_id, abandoned=False, published=False)
    await owner.aclose()
    used = await owner.limiter.used("key", key.id)
    assert (used["tokens_per_month"], used["requests_per_minute"]) == (0, 0)
    assert await _rows(usage.pool, key) == ([], [])


async def test_an_adopted_answer_whose_budget_ran_out_says_so_even_after_it_was_settled(
        redis: Redis, namespace: str, usage: UsageStore) -> None:
    owner, adopter = _replicas(redis, namespace, usage)
    _, request = await _reserve(owner)
    budgets = TokenBudgets(redis, namespace)
    with pytest.raises(BudgetExhausted):  # a model call wanted more than the whole cap
        await budgets.take(request.response_id, 10**9, 10)
    answer = Answer(**request.child_fields(), mode=request.mode, content="partial",
                    usage=Usage(prompt_tokens=1, completion_tokens=1))
    resumed = await adopter.settle(answer, adopted=True)  # the replica that resumed the stream settles it
    late = await owner.settle(answer)  # the owner, once more (e.g. a duplicate delivery): nothing charged
    await asyncio.gather(owner.settled(), adopter.settled())
    for marked in (resumed, late):
        assert marked.finish_reason == "length" and marked.content.startswith("partial\n\n(Incomplete: this request")
    rows = await usage.pool.fetch("SELECT settled_by FROM usage_requests WHERE response_id = $1", request.response_id)
    assert [r["settled_by"] for r in rows] == ["adopter"]


async def test_an_edge_that_died_between_its_reply_and_its_usage_event_is_charged_once_by_the_sweeper(
        redis: Redis, namespace: str, usage: UsageStore) -> None:
    """The edge replies after its claim and the counters' update (Settlements.apply), before the usage event
    (issue 52). If it dies there, the sweeper publishes the same usage after the lease and leaves the counters
    as the edge set them (not applied twice); a repeated apply changes nothing either."""
    owner, sweeper = _replicas(redis, namespace, usage)
    settlements = owner.settlements
    key, request = await _reserve(owner)
    claim = await settlements.claim(request.response_id, "answer", 20, 5, lease_s=1.5)
    assert claim.state == "mine" and await settlements.apply(request.response_id, claim)
    assert not await settlements.apply(request.response_id, claim)  # once
    assert (await owner.limiter.used("key", key.id))["tokens_per_month"] == 25  # the room is back at once
    assert await _rows(usage.pool, key) == ([], [])  # ... and the edge died before its usage event
    assert request.response_id in await settlements.due(request.deadline_at.timestamp() + 60, 10)
    await _lease_gone(settlements, request.response_id)
    assert await sweeper.settle_orphan(request.response_id, None)  # the first claim's usage is kept
    rows, daily = await _rows(usage.pool, key)
    assert [(r["prompt_tokens"], r["completion_tokens"], r["outcome"], r["settled_by"]) for r in rows] == \
        [(20, 5, "answered", "sweeper")]
    assert (daily[0]["requests"], daily[0]["prompt_tokens"], daily[0]["completion_tokens"]) == (1, 20, 5)
    assert (await owner.limiter.used("key", key.id))["tokens_per_month"] == 25  # not applied twice
    assert await settlements.due(request.deadline_at.timestamp() + 60, 10) == []


async def test_the_owners_claim_applies_the_counters_in_its_round_trip_only_for_the_hold_and_usage_it_reserved(
        redis: Redis, namespace: str, usage: UsageStore) -> None:
    """The edge's claim on its Answer carries the hold it reserved (Settlements.claim's `reserved`): the counters'
    deltas are applied in the claim's round trip, once. A claim that finds another usage decided before (here a
    sweeper's `spent` whose lease ran out) applies nothing: its caller applies the usage decided, once."""
    owner, _ = _replicas(redis, namespace, usage)
    settlements = owner.settlements
    key, request = await _reserve(owner)
    reserved = owner._mine[request.response_id][1]
    claim = await settlements.claim(request.response_id, "answer", 20, 5, reserved=reserved)
    assert (claim.state, claim.applied, claim.hold) == ("mine", True, reserved)
    assert (await owner.limiter.used("key", key.id))["tokens_per_month"] == 25  # the reservation replaced
    assert not await settlements.apply(request.response_id, claim)  # applied already: once

    key, request = await _reserve(owner)
    reserved = owner._mine[request.response_id][1]
    spent = await settlements.claim(request.response_id, "spent", lease_s=0.2, outcome="abandoned")
    assert spent.state == "mine" and not spent.applied
    await _lease_gone(settlements, request.response_id)
    claim = await settlements.claim(request.response_id, "answer", 20, 5, reserved=reserved)
    assert (claim.state, claim.applied, claim.outcome) == ("mine", False, "abandoned")  # the first usage kept
    assert (await owner.limiter.used("key", key.id))["tokens_per_month"] == reserved.tokens  # nothing applied
    assert await settlements.apply(request.response_id, claim)
    assert (await owner.limiter.used("key", key.id))["tokens_per_month"] == claim.prompt + claim.completion
