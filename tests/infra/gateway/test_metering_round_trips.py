"""A request that misses the exact cache, at the edge, on real Redis and Postgres (gateway.metering,
moe_core.access.edge_hit, gateway.feedback; issue 29): its limits, the cache lookup, its token budget and its hold
in one round trip before it enters the fleet; its Answer's record for feedback in the round trip of the settlement's
claim with the counters' update (the hold this replica reserved: Settlements.claim's `reserved`), then (after the
reply: issue 52) the usage event and the finish: 3 Redis round trips per request, 1 on the answer's path (were 4 and
2: the claim and the counters' update apart; at first 5: the reservation, the budget's opening, the record, the
claim, the finish), and no Kafka acknowledgement in the client's wait. Each count comes with what the merge must
keep: the budget is the grant and the hold carries the grant and its cost, a refused request leaves nothing behind
(429 before anything enters the fleet), the request is charged once, and an answer this replica does not settle is
still recorded. Round trips are counted by a Redis client that counts every command and pipeline it sends."""

from __future__ import annotations

import asyncio
import math
import uuid
from typing import Any

import pytest
from redis.asyncio import Redis

from gateway.feedback import AnswerRecorder
from gateway.metering import Metering
from gateway.settings import GatewaySettings
from moe_core.access.keystore import ApiKey
from moe_core.access.limits import Limiter, LimitExceeded, Limits, ModelPrice
from moe_core.contracts import Answer, ChatMessage, ChatRequest, ModelUse, Usage, UsageCharged, deadline_in
from moe_core.llm.exact_cache import ExactAnswers
from moe_core.llm.token_budget import TokenBudgets
from tests.support.counting_redis import CountingRedis

pytestmark = pytest.mark.infra
TENANT = "t-metering-trips"
PRICE = ModelPrice(input=1.5, output=6.25)


class Edge:
    """The gateway's metering and answers subscriber on one counting client; usage events collected."""

    def __init__(self, redis: CountingRedis, namespace: str) -> None:
        self.redis = redis
        self.charges: list[UsageCharged] = []
        self.delivered: list[Answer] = []
        self.gate: asyncio.Event | None = None
        settings = GatewaySettings(topic_namespace=namespace, model_prices={"moe-orchestrator": PRICE})
        self.metering = Metering(settings, Limiter(redis, namespace), self._publish)
        self.answers = AnswerRecorder(redis, namespace, 3600)
        self.on_answer = self.answers.recording(self.metering, self._deliver, lambda rid: True)
        self.exact = ExactAnswers(redis, namespace, 0)

    async def _publish(self, charge: UsageCharged) -> None:
        if self.gate is not None:  # a broker slow to acknowledge: the charge waits, the reply does not
            await self.gate.wait()
        self.charges.append(charge)

    async def _deliver(self, answer: Answer) -> None:
        self.delivered.append(answer)

    async def trips(self, work: Any) -> int:
        before = self.redis.counts[0]
        await work
        return self.redis.counts[0] - before


def _request(text: str) -> ChatRequest:
    return ChatRequest(response_id=uuid.uuid4().hex, tenant_id=TENANT, deadline_at=deadline_in(30),
                       mode="moe-orchestrator", messages=[ChatMessage(role="user", content=text)])


def _answer(request: ChatRequest) -> Answer:
    return Answer(**request.child_fields(), mode=request.mode, content="4", question=request.messages[-1].content,
                  models_used=[ModelUse(model="m", category="general")],
                  usage=Usage(prompt_tokens=12, completion_tokens=3))


def _key(limits: Limits) -> ApiKey:
    return ApiKey(id=f"k{uuid.uuid4().hex[:10]}", name="k", role="user", tenant_ids=(TENANT,), limits=limits)


async def test_a_miss_costs_one_round_trip_before_the_fleet_and_one_on_its_answer(
        counting: CountingRedis, redis: Redis, namespace: str) -> None:
    edge = Edge(counting, namespace)
    key = _key(Limits(requests_per_minute=100, tokens_per_month=10**9, cost_per_month=10**6))
    warm = _request("warm-up")  # the first call of each script loads it (once per Redis)
    await edge.metering.reserve(key, warm, "moe-orchestrator", edge.exact.lookup(warm)[0])  # type: ignore[index]
    await edge.on_answer(_answer(warm))
    await edge.metering.settled()

    request = _request("What is 2+2?")
    lookup = edge.exact.lookup(request)
    assert lookup is not None
    assert await edge.trips(edge.metering.reserve(key, request, "moe-orchestrator", lookup[0])) == 1
    rid = request.response_id
    hold = (await edge.metering.settlements.holds([rid]))[rid]  # opened with its budget in the same script
    assert hold.tokens > 1000 and hold.cost_micros == math.ceil(hold.tokens * PRICE.micros_per_token)
    assert hold.price == PRICE and (hold.key_id, hold.tenant_id, hold.model) == (key.id, TENANT, "moe-orchestrator")
    assert await TokenBudgets(redis, namespace).left(rid) == hold.tokens
    assert await redis.hget(edge.metering.settlements.key(rid), "tokens") == str(hold.tokens)
    used = await edge.metering.limiter.used("key", key.id)
    assert used["tokens_per_month"] == hold.tokens + 15 and used["cost_per_month"] * 1e6 == pytest.approx(
        hold.cost_micros + PRICE.micros(12, 3))  # the warm-up's settled usage, and this request's cap
    assert rid in await edge.metering.settlements.due(10**12, 100)

    answer = _answer(request)
    edge.gate = asyncio.Event()  # the usage event's acknowledgement held back
    # the client has its answer after the claim (with the record and the counters' update); no usage event yet
    assert await edge.trips(edge.on_answer(answer)) == 1
    assert [a.content for a in edge.delivered] == ["4", "4"] and len(edge.charges) == 1  # the warm-up's only
    assert rid in await edge.metering.settlements.due(10**12, 100)  # claimed, not yet finished
    used = await edge.metering.limiter.used("key", key.id)
    assert (used["tokens_per_month"], used["requests_per_minute"]) == (30, 2)  # the room is back before the reply
    edge.gate.set()
    assert await edge.trips(edge.metering.settled()) == 1  # after the reply: its usage event, then the finish
    assert [a.content for a in edge.delivered] == ["4", "4"]
    record = await edge.answers.records.get(rid)
    assert record is not None and (record.tenant_id, record.question, record.models_used) == (
        TENANT, "What is 2+2?", answer.models_used)
    assert [(c.response_id, c.prompt_tokens, c.completion_tokens, c.cost_micros, c.outcome, c.settled_by)
            for c in edge.charges[1:]] == [(rid, 12, 3, PRICE.micros(12, 3), "answered", "owner")]
    used = await edge.metering.limiter.used("key", key.id)
    assert (used["tokens_per_month"], used["requests_per_minute"]) == (30, 2)  # the caps replaced by the usage
    assert await TokenBudgets(redis, namespace).left(rid) == 0  # closed
    assert await edge.metering.settlements.due(10**12, 100) == []
    await edge.on_answer(answer)  # delivered again: recorded again, charged once
    await edge.metering.settled()
    assert len(edge.charges) == 2


async def test_a_request_with_nothing_to_look_up_is_reserved_and_opened_in_one_round_trip(
        counting: CountingRedis, redis: Redis, namespace: str) -> None:
    edge = Edge(counting, namespace)
    key = _key(Limits(tokens_per_day=10**9))
    warm = _request("warm-up")
    await edge.metering.reserve(key, warm, "moe-orchestrator")
    held = (await edge.metering.settlements.holds([warm.response_id]))[warm.response_id].tokens
    request = _request("Summarise this conversation in three words.")  # e.g. a chore, or a request with images
    assert await edge.trips(edge.metering.reserve(key, request, "moe-orchestrator")) == 1
    hold = (await edge.metering.settlements.holds([request.response_id]))[request.response_id]
    assert await TokenBudgets(redis, namespace).left(request.response_id) == hold.tokens > 0
    edge.metering.release(request.response_id, abandoned=False, published=False)  # never entered the fleet
    await edge.metering.aclose()
    assert (await edge.metering.limiter.used("key", key.id))["tokens_per_day"] == held  # the warm-up's cap only


async def test_an_answer_this_replica_does_not_settle_is_recorded_on_its_own(
        counting: CountingRedis, namespace: str) -> None:
    edge = Edge(counting, namespace)
    answer = _answer(_request("What is 3+3?"))  # e.g. reserved by another replica
    assert await edge.trips(edge.on_answer(answer)) == 1
    assert await edge.answers.records.get(answer.response_id) is not None and edge.charges == []


@pytest.mark.parametrize("limits", [Limits(requests_per_minute=0), Limits(tokens_per_day=10)])
async def test_a_refused_request_leaves_no_budget_no_hold_and_nothing_counted(
        counting: CountingRedis, redis: Redis, namespace: str, limits: Limits) -> None:
    edge = Edge(counting, namespace)
    key = _key(limits)
    request = _request("What is 2+2?")
    with pytest.raises(LimitExceeded) as refused:
        await edge.metering.reserve(key, request, "moe-orchestrator", edge.exact.lookup(request)[0])  # type: ignore[index]
    assert refused.value.status == 429
    assert await TokenBudgets(redis, namespace).left(request.response_id) is None
    assert await redis.exists(edge.metering.settlements.key(request.response_id)) == 0
    assert await edge.metering.settlements.due(10**12, 100) == []
    used = await edge.metering.limiter.used("key", key.id)
    assert (used["requests_per_minute"], used["tokens_per_day"], used["cost_per_day"]) == (0, 0, 0)
