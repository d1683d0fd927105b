"""Issue 47: what a stream shows is proven. The edge shows a progress event or an answer delta only when a declared
producer of its topic signed it (gateway.declaration: every subscription `signed`), live and when a stream is
resumed; anything else is a finding: dead-lettered by the gateway with the reason, counted
(moe_producer_signature_refused_total), never shown.

On the real broker with its ACLs: the gateway runs as its own principal, and the forger holds the expert-worker's
Kafka credentials (its ACLs let it write progress and deltas) but not the merger's or the planner's signing keys.
It publishes into a live stream a delta with a forged `x-moe-producer: merger` header and no signature, a delta signed
with its own key under the merger's name, a progress event signed as itself under a header naming the planner, and a
delta signed with graph-rag's key (graph-rag publishes no deltas). None reaches the SSE stream; the request completes
with the genuine events; the resumed stream, read back from the topics, holds none of them either."""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from moe_core.contracts import AnswerDelta, ChatRequest, Envelope, Progress, Topics, Usage, headers
from moe_core.runtime.kafka_clients import client_kwargs
from moe_core.runtime.producer_signing import ProducerSigner
from moe_core.stage.producers import signer
from tests.support.broker_principals import Principals, settings_of
from tests.support.bus_driver import BusDriver
from tests.support.fleet import ServiceProcess, producer_env, producer_keys
from tests.support.lone_service import lone_gateway
from tests.support.namespaces import new_namespace
from tests.support.sse import chat_text, sse_events, sse_until
from tests.support.topic_reader import keyed_records

pytestmark = pytest.mark.e2e
FORGER = "expert-worker"  # whose Kafka credentials the forger holds


@pytest.fixture(scope="module")
def signed_gateway(infra: dict[str, str]) -> Iterator[tuple[ServiceProcess, Principals, Path]]:
    """A gateway as its own principal with its producer keys, on a namespace whose ACLs are the declarations'."""
    namespace = new_namespace("streamsig")
    principals = Principals({**os.environ, "MOE_TOPIC_NAMESPACE": namespace}, ["gateway", FORGER])
    if not principals.enabled:
        pytest.fail("the local broker runs without SASL: restart it (`fleetctl restart kafka`)")
    principals.set_up()
    keys = producer_keys()
    try:
        with lone_gateway(infra, "streamsig", 1, MOE_TOPIC_NAMESPACE=namespace, **principals.env("gateway"),
                          **producer_env(keys, "gateway")) as gateway:
            yield gateway, principals, keys
    finally:
        principals.tear_down()


@pytest.fixture(scope="module")
async def fleet_bus(signed_gateway: tuple[ServiceProcess, Principals, Path],
                    infra: dict[str, str]) -> AsyncIterator[BusDriver]:
    """The fleet behind the gateway: progress signed by the planner, deltas and answers by the merger."""
    gateway, _, keys = signed_gateway
    topics = Topics.for_namespace(gateway.env["MOE_TOPIC_NAMESPACE"])
    driver = BusDriver(infra["kafka"], gateway.env["MOE_TOPIC_NAMESPACE"], {
        topics.progress: signer(keys, "planner"), topics.deltas: signer(keys, "merger"),
        topics.answers: signer(keys, "merger")})
    await driver.start()
    yield driver
    await driver.stop()


def _forgeries(request: ChatRequest, keys: Path, topics: Topics) -> list[tuple[str, Envelope, dict[str, str]]]:
    """(topic, message, headers) of each forgery, by the reason the edge refuses it."""
    fields = request.child_fields()

    def signed_as(message: Envelope, topic: str, key_of: str, name: str, claim: str) -> dict[str, str]:
        own: ProducerSigner = signer(keys, key_of)
        own.name = name
        value, kind = message.model_dump_json().encode(), type(message).__name__
        return {headers.MESSAGE_TYPE: kind, headers.PRODUCER: claim,
                **own.headers(topic, request.response_id.encode(), value, kind)}

    unsigned = AnswerDelta(**fields, seq=0, content="FORGED-unsigned")
    borrowed = AnswerDelta(**fields, seq=0, content="FORGED-borrowed")
    mismatch = Progress(**fields, stage="planner", event="planned", detail="FORGED-mismatch")
    stranger = AnswerDelta(**fields, seq=0, content="FORGED-stranger")
    return [
        (topics.deltas, unsigned, {headers.MESSAGE_TYPE: "AnswerDelta", headers.PRODUCER: "merger"}),
        (topics.deltas, borrowed, signed_as(borrowed, topics.deltas, FORGER, "merger", "merger")),
        (topics.progress, mismatch, signed_as(mismatch, topics.progress, FORGER, FORGER, "planner")),
        (topics.deltas, stranger, signed_as(stranger, topics.deltas, "graph-rag", "graph-rag", "graph-rag")),
    ]


REASONS = {"FORGED-unsigned": ("unsigned", "producer signature refused: unsigned: no producer signature"),
           "FORGED-borrowed": ("bad_signature", "producer signature refused: the signature is not merger's"),
           "FORGED-mismatch": ("producer_mismatch", f"it claims producer planner but is signed as {FORGER}"),
           "FORGED-stranger": ("not_a_producer", "signed as graph-rag, which is not a declared producer of")}


async def _publish_as_forger(principals: Principals, namespace: str,
                             forgeries: list[tuple[str, Envelope, dict[str, str]]]) -> None:
    env = {**os.environ, **principals.env(FORGER), "MOE_TOPIC_NAMESPACE": namespace}
    producer = AIOKafkaProducer(**client_kwargs(settings_of(env)), request_timeout_ms=10_000)
    await producer.start()
    try:
        for topic, message, hdrs in forgeries:
            await producer.send_and_wait(topic, message.model_dump_json().encode(),
                                         key=message.response_id.encode(),
                                         headers=[(k, v.encode()) for k, v in hdrs.items()])
    finally:
        await producer.stop()


async def _refused(http: httpx.AsyncClient, gateway: ServiceProcess) -> dict[tuple[str, str], float]:
    """The gateway's refusals by (topic kind, reason), from its /metrics."""
    text = (await http.get(f"{gateway.url}/metrics")).text
    out: dict[tuple[str, str], float] = {}
    for labels, value in re.findall(r"moe_producer_signature_refused_total\{([^}]*)\} (\S+)", text):
        found = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        kind = found["topic"].rsplit(".", 2)[-2]  # moe.<ns>.<kind>.v1 -> kind
        out[(kind, found["reason"])] = float(value)
    return out


async def _refusals_grow(http: httpx.AsyncClient, gateway: ServiceProcess, before: dict[tuple[str, str], float],
                         want: dict[tuple[str, str], int], timeout_s: float = 60) -> dict[tuple[str, str], float]:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while True:
        now = await _refused(http, gateway)
        grown = {k: now.get(k, 0) - before.get(k, 0) for k in want}
        if all(grown[k] >= n for k, n in want.items()):
            return now
        assert loop.time() < end, f"the gateway did not refuse the forgeries: {grown} < {want}"
        await asyncio.sleep(0.3)


async def test_a_forged_progress_or_delta_never_reaches_the_stream_and_the_request_completes(
        signed_gateway: tuple[ServiceProcess, Principals, Path], fleet_bus: BusDriver, api_key: str,
        infra: dict[str, str]) -> None:
    gateway, principals, keys = signed_gateway
    namespace, topics = gateway.env["MOE_TOPIC_NAMESPACE"], fleet_bus.topics
    m = f"M{uuid.uuid4().hex[:8]}"
    body = {"model": "moe-orchestrator", "stream": True, "messages": [{"role": "user", "content": f"Greet {m}"}]}
    auth = {"Authorization": f"Bearer {api_key}"}
    want = {("deltas", "unsigned"): 1, ("deltas", "bad_signature"): 1, ("progress", "producer_mismatch"): 1,
            ("deltas", "not_a_producer"): 1}
    async with httpx.AsyncClient(timeout=90) as http:
        before = await _refused(http, gateway)
        async with http.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, headers=auth) as response:
            assert response.status_code == 200
            request = await fleet_bus.request(m, timeout_s=30)
            events = sse_events(response)
            await fleet_bus.progress(request, "planner", "planned", "general")
            # the stream is live: the genuine progress was shown
            seen = await sse_until(events, lambda s: "planner:" in chat_text(s, "reasoning_content"))
            await _publish_as_forger(principals, namespace, _forgeries(request, keys, topics))
            live = await _refusals_grow(http, gateway, before, want)  # each forgery reached the gateway: refused
            for seq, piece in enumerate(["Hello", ", world"]):
                await fleet_bus.delta(request, seq, piece)
            await fleet_bus.answer(request, "Hello, world.", usage=Usage(prompt_tokens=4, completion_tokens=3))
            seen += [event async for event in events]
        # resumed after the first event: the topics are read back, the forgeries among them refused again
        first = seen[0]["id"]
        async with http.stream("POST", f"{gateway.url}/v1/chat/completions", json=body,
                               headers={**auth, "Last-Event-ID": first}) as response:
            assert response.status_code == 200, await response.aread()
            resumed = [event async for event in sse_events(response)]
        await _refusals_grow(http, gateway, live, want)

    assert "FORGED" not in json.dumps(seen) and "FORGED" not in json.dumps(resumed)
    assert chat_text(seen, "content") == "Hello, world." and seen[-1]["data"] == "[DONE]", seen
    assert chat_text(seen, "reasoning_content").strip() == "planner: planned (general)"
    finals = [json.loads(e["data"]) for e in seen if e["data"].startswith("{")]
    assert [c["choices"][0]["finish_reason"] for c in finals if c["choices"] and c["choices"][0]["finish_reason"]] \
        == ["stop"]
    assert chat_text([seen[0], *resumed], "content") == "Hello, world." and resumed[-1]["data"] == "[DONE]", resumed

    letters = [d for d in await keyed_records(infra["kafka"], topics.deadletter, [request.response_id], 8)
               if d["consumer"] == "gateway" and d["error_type"] == "producer_signature"]
    for marker, (_, why) in REASONS.items():  # each forgery dead-lettered with its reason, live and on the resume
        named = [d["reason"] for d in letters if marker in d["payload"]]
        assert len(named) == 2 and all(why in reason for reason in named), (marker, named)
