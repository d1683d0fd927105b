"""Resumable streams: every SSE event carries an id; a client that lost its connection sends the same request
again with Last-Event-ID — to the same replica or another one — and gets the rest, nothing lost or repeated.

Two gateway replicas (separate processes) on one topic namespace; a BusDriver plays the fleet behind them (its
Answers and deltas signed with the merger's producer key, its progress with the planner's: the edge acts only on a
declared producer's, live or read back), so the test decides when each delta exists: some are shown, the serving
replica is SIGKILLed (or the client drops), the rest are published, and the stream is resumed. Whichever replica
settles a request's usage, it is charged once (one row of usage_requests, the key's counters equal to it): the one
that resumed the stream, or, when nobody resumes, the control plane's sweeper (which charges only an Answer a
declared producer signed). A resume past the deadline gets the rest or a clear 504.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from moe_core.access.keystore import KeyStore
from moe_core.access.limits import Limiter
from moe_core.access.settlement import Settlements
from moe_core.contracts import Answer, ChatRequest, Topics, Usage, headers
from moe_core.llm.token_budget import TokenBudgets
from moe_core.stage.producers import signer
from tests.e2e.conftest import _create_key
from tests.support.bus_driver import BusDriver
from tests.support.fleet import ServiceProcess, free_port, producer_env, producer_keys
from tests.support.lone_service import lone_control_plane
from tests.support.namespaces import new_namespace
from tests.support.sse import chat_text, sse_events, sse_until

pytestmark = pytest.mark.e2e
GRACE_S = 4  # MOE_RESUME_GRACE_S of the replicas


def _replica(env: dict[str, str]) -> ServiceProcess:
    port = free_port()
    return ServiceProcess("gateway", port, {**env, "MOE_HTTP_PORT": str(port)})


@pytest.fixture(scope="module")
def replicas(infra: dict[str, str]) -> Iterator[list[ServiceProcess]]:
    keys = producer_keys()  # the edge acts only on Answers a declared producer signed, live or read back
    env = {
        **os.environ, **producer_env(keys, "gateway"),
        "MOE_TOPIC_NAMESPACE": new_namespace("resume"), "MOE_KAFKA_BOOTSTRAP": infra["kafka"],
        "MOE_REDIS_URL": infra["redis"], "MOE_POSTGRES_DSN": infra["postgres"], "MOE_REQUEST_TIMEOUT_S": "60",
        "MOE_GATEWAY_WORKERS": "1", "MOE_LOG_LEVEL": "INFO", "MOE_RESUME_GRACE_S": str(GRACE_S),
        "MOE_DEADLINE_GRACE_S": "1", "MOE_SETTLE_SWEEP_INTERVAL_S": "1", "MOE_SETTLE_ORPHAN_AFTER_S": "0",
    }
    pair = [_replica(env), _replica(env)]
    try:
        for gateway in pair:
            gateway.start()
        for gateway in pair:
            gateway.wait_ready()
        # writes the usage rows from the usage topic; sweeps a dead replica's
        with lone_control_plane(pair[0], 180, **producer_env(keys, "control-plane")):
            yield pair
    finally:
        for gateway in pair:
            gateway.stop()


@pytest.fixture(scope="module")
async def bus(replicas: list[ServiceProcess], infra: dict[str, str]) -> AsyncIterator[BusDriver]:
    namespace = replicas[0].env["MOE_TOPIC_NAMESPACE"]
    keys = Path(replicas[0].env["MOE_PRODUCER_KEYS"]).parent  # the fleet's events, signed by their producers
    topics = Topics.for_namespace(namespace)
    driver = BusDriver(infra["kafka"], namespace, {topics.answers: signer(keys, "merger"),
                                                   topics.deltas: signer(keys, "merger"),
                                                   topics.progress: signer(keys, "planner")})
    await driver.start()
    yield driver
    await driver.stop()


def _ensure_up(replicas: list[ServiceProcess]) -> None:
    """A replica an earlier test killed is started again."""
    for gateway in replicas:
        if gateway.proc is None or gateway.proc.poll() is not None:
            gateway.start()
            gateway.wait_ready()


def _auth(key: str, last_id: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key}"}
    return {**headers, "Last-Event-ID": last_id} if last_id else headers


async def _read_until(response: httpx.Response, stop: Any) -> list[dict[str, str]]:
    return await sse_until(sse_events(response), stop)


async def _request(bus: BusDriver, marker: str) -> ChatRequest:
    return await bus.request(marker, timeout_s=30)


async def _key(infra: dict[str, str]) -> tuple[str, str]:
    """A fresh key (id, secret): its counters hold only this test's requests."""
    store = await KeyStore.connect(infra["postgres"])
    try:
        key, secret = await store.create("e2e-resume", "user", ["tenant-resume"])
        return key.id, secret
    finally:
        await store.close()


async def _settled(infra: dict[str, str], response_ids: list[str], timeout_s: float = 45) -> dict[str, dict[str, Any]]:
    """Each request's row in usage_requests, once all of them have one."""
    conn = await asyncpg.connect(infra["postgres"])
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            rows = await conn.fetch("SELECT * FROM usage_requests WHERE response_id = ANY($1::text[])", response_ids)
            if len(rows) == len(response_ids) or time.monotonic() > deadline:
                return {r["response_id"]: dict(r) for r in rows}
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def _charged(redis: Redis, namespace: str, key_id: str) -> int:
    """What the key's counters hold this month (reservations included)."""
    return int((await Limiter(redis, namespace).used("key", key_id))["tokens_per_month"])


async def test_an_anthropic_stream_resumes_on_the_same_replica_and_is_not_cancelled(
        replicas: list[ServiceProcess], bus: BusDriver, api_key: str) -> None:
    _ensure_up(replicas)
    gateway = replicas[1]
    m = f"M{uuid.uuid4().hex[:8]}"
    body = {"model": "claude-sonnet-4-5", "max_tokens": 200, "stream": True,
            "messages": [{"role": "user", "content": f"Count to four {m}"}]}
    async with httpx.AsyncClient(timeout=60) as http:
        async with http.stream("POST", f"{gateway.url}/v1/messages", json=body, headers=_auth(api_key)) as response:
            request = await _request(bus, m)
            await bus.delta(request, 0, "one two")
            before = await _read_until(response, lambda seen: seen[-1].get("event") == "content_block_delta")
        dropped = time.monotonic()  # the client's connection is gone: the Cancel waits for the resume grace
        await bus.delta(request, 1, " three")
        await bus.answer(request, "one two three four")
        async with http.stream("POST", f"{gateway.url}/v1/messages", json=body,
                               headers=_auth(api_key, before[-1]["id"])) as response:
            assert response.status_code == 200
            after = [event async for event in sse_events(response)]
    data = [json.loads(e["data"]) for e in before + after]
    assert all("id" in e for e in before + after if e["event"] != "ping")  # idle pings alone carry none
    ids = [e["id"] for e in before + after if "id" in e]
    assert len(ids) == len(set(ids))
    text = "".join(d["delta"]["text"] for d in data if d["type"] == "content_block_delta"
                   and d["delta"]["type"] == "text_delta")
    assert text == "one two three four"
    assert [d["type"] for d in data].count("message_start") == 1 and data[-1]["type"] == "message_stop"
    await asyncio.sleep(max(0.0, dropped + GRACE_S + 1 - time.monotonic()))  # past the grace: still no Cancel
    assert not [c for c in bus.cancels if c.response_id == request.response_id]


async def test_a_responses_stream_resumes_on_the_other_replica(
        replicas: list[ServiceProcess], bus: BusDriver, api_key: str) -> None:
    _ensure_up(replicas)
    first, second = replicas
    m = f"M{uuid.uuid4().hex[:8]}"
    body = {"model": "moe-orchestrator", "stream": True, "input": f"Name three colours {m}"}
    async with httpx.AsyncClient(timeout=60) as http:
        async with http.stream("POST", f"{first.url}/v1/responses", json=body, headers=_auth(api_key)) as response:
            request = await _request(bus, m)
            await bus.delta(request, 0, "red,")
            before = await _read_until(response, lambda seen: seen[-1].get("event") == "response.output_text.delta")
        await bus.delta(request, 1, " green,")
        await bus.answer(request, "red, green, blue")
        async with http.stream("POST", f"{second.url}/v1/responses", json=body,
                               headers=_auth(api_key, before[-1]["id"])) as response:
            after = [event async for event in sse_events(response)]
    data = [json.loads(e["data"]) for e in before + after]
    assert [d["sequence_number"] for d in data] == list(range(len(data)))  # nothing lost, nothing repeated
    assert "".join(d["delta"] for d in data if d["type"] == "response.output_text.delta") == "red, green, blue"
    assert data[-1]["type"] == "response.completed"
    message = [item for item in data[-1]["response"]["output"] if item["type"] == "message"]
    assert [part["text"] for item in message for part in item["content"]] == ["red, green, blue"]


async def test_only_the_key_that_opened_a_stream_may_resume_it(
        replicas: list[ServiceProcess], bus: BusDriver, api_key: str, infra: dict[str, str]) -> None:
    _ensure_up(replicas)
    gateway = replicas[1]
    other = await _create_key(infra["postgres"], "user", "tenant-resume-other")
    m = f"M{uuid.uuid4().hex[:8]}"
    body = {"model": "moe-orchestrator", "stream": True, "messages": [{"role": "user", "content": f"Hi {m}"}]}
    async with httpx.AsyncClient(timeout=60) as http:
        async with http.stream("POST", f"{gateway.url}/v1/chat/completions", json=body,
                               headers=_auth(api_key)) as response:
            request = await _request(bus, m)
            first = await _read_until(response, lambda seen: True)
        last_id = first[-1]["id"]
        assert last_id.startswith(request.response_id)
        url = f"{gateway.url}/v1/chat/completions"
        foreign = await http.post(url, json=body, headers=_auth(other, last_id))
        assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "stream_not_found"
        anonymous = await http.post(url, json=body, headers={"Last-Event-ID": last_id})
        assert anonymous.status_code == 401 and "error" in anonymous.json()
        garbage = await http.post(url, json=body, headers=_auth(api_key, "not-an-id"))
        assert garbage.status_code == 400 and garbage.json()["error"]["code"] == "invalid_last_event_id"
        # well formed, but naming events the stream never had: refused too (a new user's waited 313 s for nothing)
        unsent = await http.post(url, json=body, headers=_auth(api_key, f"{request.response_id}.p999.0"))
        assert unsent.status_code == 400 and unsent.json()["error"]["code"] == "invalid_last_event_id"
        wrong_api = await http.post(f"{gateway.url}/v1/messages", json=body, headers=_auth(api_key, last_id))
        assert wrong_api.status_code == 404 and wrong_api.json()["type"] == "error"  # Anthropic's envelope
    await bus.answer(request, "Hello.")


async def test_a_stream_resumes_on_another_replica_after_its_replica_is_killed(
        replicas: list[ServiceProcess], bus: BusDriver, infra: dict[str, str], redis: Redis) -> None:
    _ensure_up(replicas)
    first, second = replicas
    key_id, api_key = await _key(infra)
    m = f"M{uuid.uuid4().hex[:8]}"
    body = {"model": "moe-orchestrator", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": f"Greet the world {m}"}]}
    async with httpx.AsyncClient(timeout=60) as http:
        async with http.stream("POST", f"{first.url}/v1/chat/completions", json=body,
                               headers=_auth(api_key)) as response:
            assert response.status_code == 200
            request = await _request(bus, m)
            await bus.progress(request, "planner", "planned", "general")
            # progress and deltas are separate topics: the delta is published once the progress was shown
            events = sse_events(response)
            before = await sse_until(events, lambda seen: "planner:" in chat_text(seen, "reasoning_content"))
            await bus.delta(request, 0, "Considering greetings.", channel="reasoning")
            for seq, piece in enumerate(["Hello", ", brave"]):
                await bus.delta(request, seq, piece)
            before += await sse_until(events, lambda seen: chat_text(before + seen, "content") == "Hello, brave")
            first.kill()  # SIGKILL mid-stream: the replica never sees the rest, nor publishes a Cancel
        for seq, piece in enumerate([" new", " world"], start=2):
            await bus.delta(request, seq, piece)
        await bus.answer(request, "Hello, brave new world.", reasoning="Considering greetings.",
                         usage=Usage(prompt_tokens=11, completion_tokens=7))
        async with http.stream("POST", f"{second.url}/v1/chat/completions", json=body,
                               headers=_auth(api_key, before[-1]["id"])) as response:
            assert response.status_code == 200, await response.aread()
            after = [event async for event in sse_events(response)]
        metrics = (await http.get(f"{second.url}/metrics")).text
    assert 'moe_gateway_streams_resumed_total{api="chat"}' in metrics  # the resume is visible to operators
    ids = [e["id"] for e in before + after]
    assert all(ids) and len(ids) == len(set(ids))  # every event has an id; none came twice
    assert chat_text(before + after, "content") == "Hello, brave new world."
    assert chat_text(before + after, "reasoning_content") == "planner: planned (general)\nConsidering greetings."
    assert after[-1]["data"] == "[DONE]"
    finals = [json.loads(e["data"]) for e in after if e["data"].startswith("{")]
    assert [c["choices"][0]["finish_reason"] for c in finals if c["choices"] and c["choices"][0]["finish_reason"]] \
        == ["stop"]
    assert all(c["id"] == f"chatcmpl-{request.response_id}" for c in finals)
    # settled once, by the replica that resumed it: the Answer's usage, not the reserved cap
    row = (await _settled(infra, [request.response_id]))[request.response_id]  # written from the usage topic
    assert (row["prompt_tokens"], row["completion_tokens"], row["outcome"], row["settled_by"]) == \
        (11, 7, "answered", "adopter")
    assert await _charged(redis, first.env["MOE_TOPIC_NAMESPACE"], key_id) == 18


async def test_requests_of_a_killed_replica_that_nobody_resumes_are_settled_once_by_the_control_plane(
        replicas: list[ServiceProcess], bus: BusDriver, infra: dict[str, str], redis: Redis) -> None:
    _ensure_up(replicas)
    first = replicas[0]
    namespace = first.env["MOE_TOPIC_NAMESPACE"]
    (answered_key, answered_secret), (silent_key, silent_secret) = await _key(infra), await _key(infra)
    m = f"M{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(timeout=60) as http, contextlib.AsyncExitStack() as streams:
        for secret, which in ((answered_secret, "answered"), (silent_secret, "silent")):
            body = {"model": "moe-orchestrator", "stream": True,
                    "messages": [{"role": "user", "content": f"Hi {m} {which}"}]}
            response = await streams.enter_async_context(http.stream(
                "POST", f"{first.url}/v1/chat/completions", json=body,
                headers={**_auth(secret), "X-Request-Timeout": "3"}))
            await _read_until(response, lambda seen: True)  # both streams stay open until the replica dies
        answered, silent = await _request(bus, f"{m} answered"), await _request(bus, f"{m} silent")
        assert await _charged(redis, namespace, answered_key) > 1000  # the caps are held meanwhile
        assert await TokenBudgets(redis, namespace).take(silent.response_id, 40, 10) == 10  # a model call: 50
        first.kill()  # both requests' replica is gone; nobody resumes them
    # a forged Answer first (a principal that may write answers, the header claiming the merger, no signature): the
    # sweeper charges only the Answer a declared producer signed
    forged = Answer(**answered.child_fields(), mode=answered.mode, content="Forged.",
                    usage=Usage(prompt_tokens=900, completion_tokens=900))
    await bus.publish(forged, bus.topics.answers, marks={headers.PRODUCER: "merger"})
    await bus.answer(answered, "Hi.", usage=Usage(prompt_tokens=5, completion_tokens=3))
    rows = await _settled(infra, [answered.response_id, silent.response_id])  # the control plane's sweeper
    assert [(r["prompt_tokens"] + r["completion_tokens"], r["outcome"], r["settled_by"])
            for r in (rows[answered.response_id], rows[silent.response_id])] == \
        [(8, "answered", "sweeper"), (50, "abandoned", "sweeper")]
    assert (await _charged(redis, namespace, answered_key), await _charged(redis, namespace, silent_key)) == (8, 50)
    settlements = Settlements(redis, namespace, TokenBudgets(redis, namespace))
    due = await settlements.due(time.time() + 3600, 10_000)  # settled: no sweep charges them again
    assert answered.response_id not in due and silent.response_id not in due


async def test_a_resume_past_the_deadline_gets_the_published_answer_or_a_clear_error(
        replicas: list[ServiceProcess], bus: BusDriver, api_key: str) -> None:
    _ensure_up(replicas)
    gateway = replicas[1]
    m = f"M{uuid.uuid4().hex[:8]}"
    last: dict[str, str] = {}
    async with httpx.AsyncClient(timeout=60) as http:
        for which in ("answered", "silent"):
            body = {"model": "moe-orchestrator", "stream": True,
                    "messages": [{"role": "user", "content": f"Hello {m} {which}"}]}
            async with http.stream("POST", f"{gateway.url}/v1/chat/completions", json=body,
                                   headers={**_auth(api_key), "X-Request-Timeout": "2"}) as response:
                last[which] = (await _read_until(response, lambda seen: True))[-1]["id"]
                await _request(bus, f"{m} {which}")  # then the client's connection drops
        answered, silent = await _request(bus, f"{m} answered"), await _request(bus, f"{m} silent")
        await bus.answer(answered, "Hello late.")
        await asyncio.sleep(max(0.0, answered.remaining_seconds(), silent.remaining_seconds()) + 1.5)  # + grace
        async with http.stream("POST", f"{gateway.url}/v1/chat/completions", json={},
                               headers=_auth(api_key, last["answered"])) as response:
            assert response.status_code == 200
            rest = [event async for event in sse_events(response)]
        gone = await http.post(f"{gateway.url}/v1/chat/completions", json={},
                               headers=_auth(api_key, last["silent"]))
    assert chat_text(rest, "content") == "Hello late." and rest[-1]["data"] == "[DONE]"
    assert gone.status_code == 504, gone.text
    assert gone.json()["error"]["code"] == "deadline_exceeded" and "not on the fleet's topics" in \
        gone.json()["error"]["message"]


def _refused_answers(gateway: ServiceProcess) -> float:
    """The answers a replica refused for want of a producer's signature (its /metrics)."""
    text = httpx.get(f"{gateway.url}/metrics", timeout=30).text
    found = re.findall(r'moe_producer_signature_refused_total\{[^}]*topic="[^"]*answers[^"]*"[^}]*\} (\S+)', text)
    return sum(float(value) for value in found)


async def test_an_answer_read_back_counts_only_with_a_producers_signature(
        replicas: list[ServiceProcess], bus: BusDriver, api_key: str) -> None:
    """Issue 47: the resume path checks an Answer read back from the topics as the live path does. A forged one (a
    principal that may write the answers topic; the header claims the merger, no signature) is on the topics before
    the genuine one: the stream resumed on the other replica ends with the genuine text, and that replica counts
    the forgery (moe_producer_signature_refused_total; dead-lettered with the reason)."""
    _ensure_up(replicas)
    first, second = replicas
    m = f"M{uuid.uuid4().hex[:8]}"
    body = {"model": "moe-orchestrator", "stream": True, "messages": [{"role": "user", "content": f"Hi {m}"}]}
    refused = _refused_answers(second)
    async with httpx.AsyncClient(timeout=60) as http:
        async with http.stream("POST", f"{first.url}/v1/chat/completions", json=body,
                               headers=_auth(api_key)) as response:
            request = await _request(bus, m)
            last = (await _read_until(response, lambda seen: True))[-1]["id"]
        forged = Answer(**request.child_fields(), mode=request.mode, content="Forged.")
        await bus.publish(forged, bus.topics.answers, marks={headers.PRODUCER: "merger"})
        await bus.answer(request, "Genuine.")
        async with http.stream("POST", f"{second.url}/v1/chat/completions", json={},
                               headers=_auth(api_key, last)) as response:
            assert response.status_code == 200
            rest = [event async for event in sse_events(response)]
    assert chat_text(rest, "content") == "Genuine." and rest[-1]["data"] == "[DONE]", rest
    assert _refused_answers(second) >= refused + 1
