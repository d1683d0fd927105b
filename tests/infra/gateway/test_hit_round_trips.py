"""An exact repeat through the gateway (in process, on the real Kafka, Redis and Postgres; nothing behind it runs):
its Redis round trips are the script that checks the live client profiles, the limits, reads the cached answer and
writes the answer's record for feedback (moe_core.access.edge_hit), and after the reply the hold's finish: 2 per
hit (were 4: the profiles' overlay GET and the record's SET apart, issue 52). What the merge must keep: the record
a rating reads, a console's change of the profiles applied to the very next request, a miss going to the fleet.
Round trips are what the gateway's Redis client counts (moe_store_seconds_count{store="redis"})."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from gateway.app import create_app
from gateway.settings import GatewaySettings
from moe_core.contracts import ChatMessage, ChatRequest, ModelUse, deadline_in
from moe_core.llm.answer_records import AnswerRecord, AnswerRecords
from moe_core.llm.exact_cache import ExactAnswers, ExactEntry, cache_scope
from moe_core.llm.inference.live import live_key
from moe_core.runtime.bus import Bus
from moe_core.runtime.observability.metrics import REGISTRY
from moe_core.runtime.settings import FleetSettings
from tests.support.keys import create_key
from tests.support.topic_reader import TopicReader

pytestmark = pytest.mark.infra
MODE = "moe-orchestrator"
AGENT = "hit-trips-client/1.0"


@dataclass
class Edge:
    client: httpx.AsyncClient
    redis: Redis
    namespace: str
    requests: TopicReader
    topic: str


@pytest.fixture(scope="module")
async def edge(infra: dict[str, str]) -> AsyncIterator[Edge]:
    namespace = f"ht{uuid.uuid4().hex[:8]}"
    common: dict[str, Any] = {"topic_namespace": namespace, "kafka_bootstrap": infra["kafka"],
                              "redis_url": infra["redis"], "postgres_dsn": infra["postgres"], "consumer_workers": 1}
    app = create_app(GatewaySettings(**common, request_timeout_s=2, deadline_grace_s=0.5))
    topic = Bus(FleetSettings(**common, service_name="hit-trips-tests")).topics.requests
    redis = Redis.from_url(infra["redis"], decode_responses=True)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        stack.push_async_callback(redis.aclose)
        requests = await stack.enter_async_context(TopicReader(infra["kafka"], topic))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway", timeout=30)
        stack.push_async_callback(client.aclose)
        yield Edge(client, redis, namespace, requests, topic)


def _trips() -> float:
    return sum(s.value for m in REGISTRY.collect() if m.name == "moe_store_seconds" for s in m.samples
               if s.name.endswith("_count") and s.labels.get("store") == "redis")


async def _seed(edge: Edge, tenant: str, question: str) -> ExactEntry:
    asked = ChatRequest(response_id="seed", deadline_at=deadline_in(60), tenant_id=tenant, mode=MODE,
                        messages=[ChatMessage(role="user", content=question)])
    entry = ExactEntry(cache_key=f"c-{uuid.uuid4().hex[:6]}", question=question, answer="Leonardo da Vinci.",
                       models_used=[ModelUse(model="m/é", category="general")], completion_tokens=5)
    await ExactAnswers(edge.redis, edge.namespace, 600).put(cache_scope(asked) or "", entry)
    return entry


async def _ask(edge: Edge, key: str, question: str) -> httpx.Response:
    return await edge.client.post("/v1/chat/completions", json={
        "model": MODE, "messages": [{"role": "user", "content": question}]},
        headers={"Authorization": f"Bearer {key}", "User-Agent": AGENT})


async def test_a_hit_costs_two_round_trips_and_is_recorded_for_feedback(edge: Edge, infra: dict[str, str]) -> None:
    tenant = f"ht-{uuid.uuid4().hex[:8]}"
    key = await create_key(infra["postgres"], "hit-trips", "user", [tenant])
    question = f"Who painted the {uuid.uuid4().hex[:6]}?"
    entry = await _seed(edge, tenant, question)
    for _ in range(2):  # the first loads the scripts
        warm = await _ask(edge, key, question)
        assert warm.status_code == 200 and warm.json()["choices"][0]["message"]["content"] == entry.answer
    trips = []
    for _ in range(3):
        before = _trips()
        response = await _ask(edge, key, question)
        trips.append(_trips() - before)
        assert response.status_code == 200, response.text
        assert response.json()["moe"]["cache_hit"] is True
    assert trips == [2, 2, 2]  # the script before the reply, the finish after it (the ASGI call includes it)
    rid = response.json()["id"].removeprefix("chatcmpl-")
    record = await AnswerRecords(edge.redis, edge.namespace, 60).get(rid)
    assert record == AnswerRecord(tenant_id=tenant, models_used=entry.models_used, cache_key=entry.cache_key,
                                  question=question)  # as the Answer's own record (AnswerRecords.entry) reads
    assert 0 < await edge.redis.ttl(AnswerRecords(edge.redis, edge.namespace, 60).key(rid)) <= 7 * 86400


async def test_a_profile_changed_in_the_console_applies_to_the_next_request(edge: Edge, infra: dict[str, str]) -> None:
    """The profiles are taken as last seen and checked in the script: a change is found there, the request shaped
    again with it. Here a profile for this client caps answers at 1 token: the cached answer does not fit, the
    request goes to the fleet (a miss) with the cap, nothing counted twice."""
    tenant = f"ht-{uuid.uuid4().hex[:8]}"
    key = await create_key(infra["postgres"], "hit-trips", "user", [tenant])
    question = f"Who built the {uuid.uuid4().hex[:6]}?"
    await _seed(edge, tenant, question)
    assert (await _ask(edge, key, question)).json()["moe"]["cache_hit"] is True
    overlay = {"version": 7, "profiles": {"tiny": {"name": "tiny", "user_agents": ["hit-trips-client/*"],
                                                   "max_tokens": 1}}}
    await edge.redis.set(live_key(edge.namespace), json.dumps(overlay))
    try:
        missed = await _ask(edge, key, question)  # no planner runs: the miss times out at the edge
        assert missed.status_code != 200 or not missed.json().get("moe", {}).get("cache_hit"), missed.text
        [sent] = await edge.requests.wait(edge.topic, lambda m: m["messages"][0]["content"] == question)
        assert sent["params"]["max_tokens"] == 1 and sent["tenant_id"] == tenant
    finally:
        await edge.redis.delete(live_key(edge.namespace))
    again = await _ask(edge, key, question)  # the overlay gone: the profile with it
    assert again.status_code == 200 and again.json()["moe"]["cache_hit"] is True
