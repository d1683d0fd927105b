"""End-to-end through the real fleet (openai SDK, scripted inference servers, real Kafka/Redis/Chroma):
the semantic cache answers a repeat and a paraphrase with no model call; feedback is authenticated and
only for one's own answers; a model with bad feedback stops being chosen and comes back; a dead
inference server is skipped and the request is still answered."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import chromadb
import httpx
import openai
import pytest
from chromadb.config import Settings
from redis import Redis

from tests.conftest import Scripted
from tests.e2e.conftest import _create_key
from tests.e2e.helpers import calls_for, exact_key, marker, plan_reply
from tests.support.fleet import Fleet
from tests.support.moe_fields import moe
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e



@pytest.fixture
def client(base_url: str, api_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def namespace(fleet: Fleet) -> str:
    return fleet["gateway"].env["MOE_TOPIC_NAMESPACE"]


@pytest.fixture(scope="module")
def store(infra: dict[str, str]) -> Iterator[Redis]:
    client = Redis.from_url(infra["redis"], decode_responses=True)
    yield client
    client.close()


@pytest.fixture(scope="module")
def chroma(infra: dict[str, str]) -> Any:
    host, port = infra["chroma"].removeprefix("http://").split(":")
    return chromadb.HttpClient(host=host, port=int(port), settings=Settings(anonymized_telemetry=False))


def _ask(client: openai.OpenAI, question: str) -> Any:
    return client.chat.completions.create(model="moe-orchestrator", messages=[{"role": "user", "content": question}])


def _rate(base_url: str, key: str, response_id: str, rating: Any) -> httpx.Response:
    return httpx.post(f"{base_url}/feedback", headers={"Authorization": f"Bearer {key}"}, timeout=30,
                      json={"response_id": response_id, "rating": rating})


def _cache_entry(chroma: Any, namespace: str, question: str) -> dict[str, Any] | None:
    try:
        found = chroma.get_collection(f"moe-cache-static-{namespace}").get(  # the static cache's copy
            where={"question": question}, include=["metadatas"])
    except Exception:  # the planner creates the collection on its first lookup
        return None
    return found["metadatas"][0] if found["ids"] else None


# Answers the semantic cache keeps: the original's minimum is 150 characters (MOE_CACHE_MIN_ANSWER_CHARS)
PARIS = ("Paris is the capital of France and its largest city, on the Seine; it has been the seat of the "
         "French government for most of the time since the tenth century.")  # >= 150 chars: cached
OLYMPUS = ("Olympus Mons, on the Tharsis plateau of Mars, is the tallest volcano known in the solar system: about "
           "22 km above the surrounding plains, some two and a half times the height of Everest.")
BERLIN = ("Berlin is the capital of Germany and its largest city, on the Spree; the seat of the government "
          "moved there from Bonn in 1999, nine years after reunification.")

def test_repeat_and_paraphrase_are_answered_from_the_cache_with_no_model_call(
        client: openai.OpenAI, scripted: Scripted, chroma: Any, namespace: str, control_url: str, api_key: str,
        store: Redis) -> None:
    m = marker()
    question = f"What is the capital of France? {m}"
    repeat_key = exact_key(namespace, question)
    scripted.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Name the capital {m}"))},
        {"model": "expert-model", "contains": m, "reply": f"{PARIS}\nCONFIDENCE: high"},
    ])
    first = _ask(client, question)
    assert moe(first)["cache_hit"] is False
    assert first.usage is not None and first.usage.total_tokens > 0
    eventually(lambda: _cache_entry(chroma, namespace, question))  # the planner stored the answer
    calls = len(calls_for(scripted.calls(), m))
    assert calls == 2
    eventually(lambda: store.exists(repeat_key))  # the exact repeat, for the gateway
    planned = []
    for ask in (question, f"What's France's capital city? {m}"):
        again = _ask(client, ask)
        planned.append(bool(store.exists(f"planner:outcome:{moe(again)['response_id']}")))
        assert again.choices[0].message.content == PARIS
        assert moe(again)["cache_hit"] is True
        assert again.usage is not None
        assert (again.usage.prompt_tokens, again.usage.completion_tokens, again.usage.total_tokens) == (0, 0, 0)
        assert moe(again)["sources"][0]["kind"] == "cache"
    assert len(calls_for(scripted.calls(), m)) == calls  # zero model calls for both
    # the repeat word for word was answered by the gateway itself (the planner never saw it); the
    # paraphrase by the planner's semantic cache
    assert planned == [False, True]

    # a near miss (opposite meaning) is not answered from the cache
    scripted.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Name it {m}"))},
        {"model": "expert-model", "contains": m, "reply": f"{BERLIN}\nCONFIDENCE: high"},
    ])
    other = _ask(client, f"What is the capital of Germany? {m}")
    assert moe(other)["cache_hit"] is False and other.choices[0].message.content == BERLIN

    # a bad rating of the cached answer flags the entry: the next ask goes through the pipeline again
    assert _rate(control_url, api_key, again.id, 1).status_code == 202
    eventually(lambda: (_cache_entry(chroma, namespace, question) or {}).get("flagged"))
    assert not store.exists(repeat_key)  # the gateway no longer has it either
    fresh = _ask(client, question)
    assert moe(fresh)["cache_hit"] is False and fresh.choices[0].message.content == BERLIN


def test_a_cached_answer_longer_than_max_tokens_or_holding_a_stop_sequence_is_not_served(
        client: openai.OpenAI, scripted: Scripted, chroma: Any, namespace: str, store: Redis) -> None:
    """The cache keeps whole answers; a request whose max_tokens is smaller than the tokens the answer took, or whose
    stop sequence the answer holds, is answered afresh (where both apply), by the gateway's exact repeat and by
    the planner's semantic cache alike (moe_core.llm.exact_cache.fits). A new user got the cached 75 words with
    finish_reason stop for max_tokens=2."""
    m = marker()
    # a question of its own: no other test's entry is near it (the other tests cache answers about France)
    question = f"What is the tallest volcano on Mars? {m}"
    scripted.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Name the volcano {m}"))},
        {"model": "expert-model", "contains": m, "reply": f"{OLYMPUS}\nCONFIDENCE: high"},
    ])
    first = _ask(client, question)
    took = first.usage.completion_tokens  # type: ignore[union-attr]
    assert moe(first)["cache_hit"] is False and took > 10
    eventually(lambda: _cache_entry(chroma, namespace, question))
    eventually(lambda: store.exists(exact_key(namespace, question)))
    paraphrase = f"Which volcano on Mars is the tallest? {m}"
    for ask in (question, paraphrase):  # word for word (the gateway) and by meaning (the planner)
        # 10 is below every entry's count: a repeat planned from the plan cache stores an entry without the
        # planner's tokens (fewer than `took`), but never fewer than the expert's ~30 words
        for limits in ({"max_tokens": 10}, {"stop": ["Tharsis"]}):
            calls = len(calls_for(scripted.calls(), m))
            fresh = client.chat.completions.create(  # type: ignore[call-overload]
                model="moe-orchestrator", messages=[{"role": "user", "content": ask}], **limits)
            assert moe(fresh)["cache_hit"] is False, (ask, limits)
            assert len(calls_for(scripted.calls(), m)) > calls  # the pipeline answered it
        fits = client.chat.completions.create(model="moe-orchestrator", messages=[{"role": "user", "content": ask}],
                                              max_tokens=took, stop=["Lyon"])
        assert moe(fits)["cache_hit"] is True and fits.choices[0].message.content == OLYMPUS


def test_feedback_needs_a_key_and_is_only_for_ones_own_answers(
        client: openai.OpenAI, scripted: Scripted, control_url: str, api_key: str, infra: dict[str, str]) -> None:
    m = marker()
    scripted.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Say yes {m}"))},
        {"model": "expert-model", "contains": m, "reply": "Yes.\nCONFIDENCE: high"},
    ])
    answer = _ask(client, f"Is water wet? {m}")
    rid = moe(answer)["response_id"]
    assert httpx.post(f"{control_url}/feedback", json={"response_id": rid, "rating": 5}).status_code == 401
    for bad in ({"response_id": rid, "rating": 0}, {"response_id": rid, "rating": 6}, {"response_id": rid},
                {"response_id": rid, "rating": "5"}, {"response_id": rid, "rating": 4.5},
                {"response_id": rid, "rating": 5, "extra": 1}):
        response = httpx.post(f"{control_url}/feedback", json=bad, headers={"Authorization": f"Bearer {api_key}"})
        assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"
    unknown = _rate(control_url, api_key, uuid.uuid4().hex, 5)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "response_not_found"
    stranger = asyncio.run(_create_key(infra["postgres"], "user", f"tenant-other-{m}"))
    foreign = _rate(control_url, stranger, answer.id, 5)
    assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "response_not_found"
    accepted = _rate(control_url, api_key, answer.id, 5)  # the chatcmpl- id works as well as the bare one
    assert accepted.status_code == 202 and accepted.json() == {
        "object": "feedback", "response_id": rid, "rating": 5, "status": "recorded"}
    again = _rate(control_url, api_key, rid, 1)
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_rated"


def _source(answer: Any) -> str:
    return str(moe(answer)["sources"][0]["ref"])


def test_a_model_with_bad_feedback_stops_being_chosen_and_comes_back(
        client: openai.OpenAI, scripted: Scripted, control_url: str, infra: dict[str, str], store: Redis,
        namespace: str) -> None:
    journey = marker()
    # a tenant of its own: other journeys (the planner patterns' ratings) rate data_analyst's models for tenant-e2e
    tenant = f"tenant-feedback-{journey}"
    api_key = asyncio.run(_create_key(infra["postgres"], "user", tenant))
    client = client.with_options(api_key=api_key)
    scripted.script([
        {"model": "planner-model", "contains": journey, "reply": plan_reply(("data_analyst", f"Analyse {journey}"))},
        {"model": "expert-model-b", "contains": journey, "reply": "Mean is 4 (model B).\nCONFIDENCE: high"},
        {"model": "expert-model", "contains": journey, "reply": "Mean is 4 (model A).\nCONFIDENCE: high"},
    ])
    score_key = f"expert:tscore:{namespace}:{tenant}:data_analyst:expert-model-b"  # the tenant's own

    def ask(n: int) -> Any:
        return _ask(client, f"What is the mean of dataset {n}? {journey}")

    first_answers = [ask(n) for n in range(1, 6)]
    assert {_source(a) for a in first_answers} == {"data_analyst:expert-model-b@scripted"}  # first in its template
    for answer in first_answers[:3]:
        assert _rate(control_url, api_key, answer.id, 1).status_code == 202
    eventually(lambda: int(store.hget(score_key, "n") or 0) >= 3)  # the worker counted the three ratings
    skipped = ask(6)
    assert _source(skipped) == "data_analyst:expert-model@scripted"
    assert skipped.choices[0].message.content == "Mean is 4 (model A)."
    for answer in first_answers[3:]:  # its other answers are rated well later: the score recovers
        assert _rate(control_url, api_key, answer.id, 5).status_code == 202
    eventually(lambda: int(store.hget(score_key, "n") or 0) >= 5)
    # B (3/7 after five ratings) is usable again; models are tried best score first, as in the original, so A
    # (no ratings yet: the neutral 0.5) answers until its own ratings put it below B
    again = ask(7)
    assert _source(again) == "data_analyst:expert-model@scripted"
    a_key = f"expert:tscore:{namespace}:{tenant}:data_analyst:expert-model"
    for answer in (skipped, again, ask(8)):
        assert _rate(control_url, api_key, answer.id, 1).status_code == 202
    eventually(lambda: int(store.hget(a_key, "n") or 0) >= 3)
    assert _source(ask(9)) == "data_analyst:expert-model-b@scripted"


def test_a_dead_inference_server_is_skipped_and_the_request_still_answered(
        client: openai.OpenAI, scripted: Scripted, scripted_server_b: Scripted, store: Redis, namespace: str) -> None:
    m = marker()
    scripted.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("translation", f"Translate it {m}"))},
        {"model": "fleet-model", "contains": m, "reply": "Grazie mille (server A).\nCONFIDENCE: high"},
    ])
    scripted_server_b.script([{"model": "fleet-model", "contains": m,
                               "reply": "Grazie mille (server B).\nCONFIDENCE: high"}])
    scripted_server_b.state.up()  # and the fleet knows it, whatever a journey before this one left
    store.delete(f"inference:{namespace}:down:scripted-b")
    eventually(lambda: store.hget(f"inference:{namespace}:server:scripted-b", "healthy") != "0", timeout_s=60)
    try:  # the router sends these to the translation expert, whose model both servers serve
        before = _ask(client, f"Translate 'thank you very much' into Italian {m} 1")
        assert _source(before) == "translation:fleet-model@scripted-b"  # the fleet's first choice while it is up
        scripted_server_b.state.down()
        after = _ask(client, f"Translate 'thank you very much' into Italian {m} 2")
        assert after.choices[0].message.content == "Grazie mille (server A)."
        assert _source(after) == "translation:fleet-model@scripted"
        down = store.exists(f"inference:{namespace}:down:scripted-b")
        beat = store.hget(f"inference:{namespace}:server:scripted-b", "healthy")
        assert down or beat == "0"  # the fleet knows: failed call, or the heartbeat saw it
        again = _ask(client, f"Translate 'thank you very much' into Italian {m} 3")
        assert _source(again) == "translation:fleet-model@scripted"
    finally:  # the fleet's first choice again for the journeys after this one
        # (tests/e2e/moe_core/policy/test_data_class_egress.py)
        scripted_server_b.state.up()
        store.delete(f"inference:{namespace}:down:scripted-b")
        eventually(lambda: store.hget(f"inference:{namespace}:server:scripted-b", "healthy") != "0", timeout_s=60)
