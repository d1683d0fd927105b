"""Feedback scores are per tenant, end to end (openai SDK, real fleet): tenant A's five 1-star ratings make
the expert-worker skip a model for a category for A's requests, while tenant B's requests keep getting
that model; only an admin may mark a rating as a global signal."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import openai
import pytest
from redis import Redis

from tests.conftest import Scripted
from tests.e2e.conftest import _create_key
from tests.e2e.helpers import plan_reply
from tests.support.fleet import Fleet
from tests.support.moe_fields import moe

pytestmark = pytest.mark.e2e
MODEL_B = "data_analyst:expert-model-b@scripted"  # first in the category's template
MODEL_A = "data_analyst:expert-model@scripted"


def _client(base_url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=60)


def _source(client: openai.OpenAI, question: str) -> tuple[str, str]:
    """(the source that answered, the answer's id)"""
    answer: Any = client.chat.completions.create(model="moe-orchestrator",
                                                 messages=[{"role": "user", "content": question}])
    return str(moe(answer)["sources"][0]["ref"]), str(answer.id)


def _rate(base_url: str, key: str, response_id: str, rating: int, **extra: Any) -> httpx.Response:
    return httpx.post(f"{base_url}/feedback", headers={"Authorization": f"Bearer {key}"}, timeout=30,
                      json={"response_id": response_id, "rating": rating, **extra})


def test_one_tenants_bad_ratings_do_not_change_another_tenants_routing(
        fleet: Fleet, infra: dict[str, str], scripted: Scripted, base_url: str, control_url: str) -> None:
    namespace = fleet["gateway"].env["MOE_TOPIC_NAMESPACE"]
    tenant_a, tenant_b = f"tenant-a-{uuid.uuid4().hex[:6]}", f"tenant-b-{uuid.uuid4().hex[:6]}"
    key_a = asyncio.run(_create_key(infra["postgres"], "user", tenant_a))
    key_b = asyncio.run(_create_key(infra["postgres"], "user", tenant_b))
    a, b = _client(base_url, key_a), _client(base_url, key_b)
    journey = f"M{uuid.uuid4().hex[:8]}"
    scripted.script([
        {"model": "planner-model", "contains": journey, "reply": plan_reply(("data_analyst", f"Analyse {journey}"))},
        {"model": "expert-model-b", "contains": journey, "reply": "Mean is 4 (model B).\nCONFIDENCE: high"},
        {"model": "expert-model", "contains": journey, "reply": "Mean is 4 (model A).\nCONFIDENCE: high"},
    ])
    answers = [_source(a, f"What is the mean of dataset {n}? {journey}") for n in range(5)]
    assert {source for source, _ in answers} == {MODEL_B}
    assert _rate(control_url, key_a, answers[0][1], 1, approved=True).status_code == 403  # a user key: no global
    for _, rid in answers:
        assert _rate(control_url, key_a, rid, 1).status_code == 202
    store = Redis.from_url(infra["redis"], decode_responses=True)
    try:
        own = f"expert:tscore:{namespace}:{tenant_a}:data_analyst:expert-model-b"
        end = time.monotonic() + 30
        while int(store.hget(own, "n") or 0) < 5:  # the expert-worker counted A's five ratings
            assert time.monotonic() < end, "the ratings were not counted"
            time.sleep(0.1)
        assert not store.exists(f"expert:score:{namespace}:data_analyst:expert-model-b")  # no global score
        assert not store.keys(f"expert:tscore:{namespace}:{tenant_b}:*")
    finally:
        store.close()
    assert _source(a, f"What is the mean of dataset 10? {journey}")[0] == MODEL_A  # skipped for A ...
    assert _source(b, f"What is the mean of dataset 11? {journey}")[0] == MODEL_B  # ... not for B
    assert _source(a, f"What is the median of dataset 12? {journey}")[0] == MODEL_A
