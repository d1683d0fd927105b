"""Duplicate delivery of every message type: once a request is answered, learned from and rated, every
record it left on every topic is delivered again. Nothing happens twice: no model is called again, no
second (different) answer, the graph counts the ingest once, the score counts the rating once. The record keeps
what was on the topics, every one of the request's Kafka records at its own position, all signed, chained and
verified: the request twice; the answer once for each time the merger published it (its remembered answer again for
each redelivered input)."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
from redis.asyncio import Redis

from moe_core.contracts import Topics
from tests.chaos.conftest import TENANT
from tests.chaos.ingest import answered_and_extracted, ingested, nonzero, until
from tests.conftest import Scripted
from tests.lineage.conftest import LineageFleet
from tests.support.chaos import ask
from tests.support.chaos_bus import publish_again, records_of, wait_consumed
from tests.support.chaos_infra import PrivateInfra
from tests.support.fleet import Fleet
from tests.support.record_check import assert_complete
from tests.support.topic_reader import TopicReader

pytestmark = pytest.mark.chaos
async def _ratings(redis: Redis, namespace: str) -> dict[str, str]:
    """The tenant's rating counts (n) per category and model."""
    keys = [k async for k in redis.scan_iter(f"expert:tscore:{namespace}:{TENANT}:*")]
    return {k: str(await redis.hget(k, "n")) for k in sorted(keys)}


async def test_every_message_delivered_twice_counts_once(
        chaos_fleet: Fleet, chaos_url: str, chaos_key: str, private_infra: PrivateInfra,
        scripted: Scripted, chaos_record: LineageFleet) -> None:
    m = f"D{uuid.uuid4().hex[:8]}"
    reply = f"Twice told is once answered ({m})."
    # this answer's extraction only: a late ingest of an earlier test's answer must not assert the triple
    scripted.script(answered_and_extracted(m, reply, "Dup"))
    namespace = chaos_fleet["gateway"].env["MOE_TOPIC_NAMESPACE"]
    topics = Topics.for_namespace(namespace)
    bootstrap = private_infra.endpoints()["kafka"]
    outcome = await asyncio.to_thread(ask, chaos_url, chaos_key, f"Tell me once {m}")
    assert outcome.status == 200 and outcome.content == reply, (outcome.status, outcome.body)
    rid = str(outcome.body["id"]).removeprefix("chatcmpl-")
    counted = await until(lambda: nonzero(ingested(private_infra, rid)), "the answer to be ingested")
    async with httpx.AsyncClient(timeout=30) as http:
        rated = await http.post(f"{chaos_fleet['control-plane'].url}/v1/feedback",
                                json={"response_id": rid, "rating": 5},
                                headers={"Authorization": f"Bearer {chaos_key}"})
    assert rated.status_code == 202, rated.text
    redis = Redis.from_url(private_infra.endpoints()["redis"], decode_responses=True)
    try:
        ratings = await until(lambda: _ratings(redis, namespace), "the rating to be counted")
        await wait_consumed(bootstrap, topics.all())
        calls = len([c for c in scripted.calls() if m in json.dumps(c["messages"])])

        records = await records_of(bootstrap, topics.all(), rid)
        kinds = {topic.split(".", 1)[1] for topic, *_ in records}
        assert {"requests.v1", "plans.v1", "tasks.expert.v1", "results.v1", "answers.v1", "ingest.v1",
                "feedback.v1"} <= kinds, kinds
        await publish_again(bootstrap, records)
        await wait_consumed(bootstrap, topics.all())

        assert len([c for c in scripted.calls() if m in json.dumps(c["messages"])]) == calls  # nothing redone
        assert await ingested(private_infra, rid) == counted  # one ingest
        assert await _ratings(redis, namespace) == ratings  # one feedback count
        assert set(ratings.values()) == {"1"}
    finally:
        await redis.aclose()
    async with TopicReader(bootstrap, topics.answers) as reader:
        answers = await reader.wait(topics.answers, lambda a: a.get("response_id") == rid, count=2)
    assert {a["content"] for a in answers} == {reply}  # one answer (the same one, however often delivered)
    # the record keeps every Kafka record as it happened: the request twice (once, then its redelivery); the answer as
    # often as it was published (each redelivered input of the merger makes it publish its remembered answer again:
    # the same one, asserted above), so it is not counted here
    await asyncio.to_thread(assert_complete, chaos_record, [rid], once=("ChatRequest",), times=2)

