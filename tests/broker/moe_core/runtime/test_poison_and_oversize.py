"""Poison and oversized messages on the real broker, through both consumer paths (Bus.subscribe and the
stage runtime's router): a message whose output the broker refuses for its size, a message failing
transiently for ever, a handler failing for good and bytes that are no message each reach the dead-letter
topic with their reason, and the next request on the same partition is answered (moe_core.runtime.redelivery)."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from moe_core.contracts import Answer, ChatMessage, ChatRequest, deadline_in
from moe_core.runtime.bus import Bus
from moe_core.runtime.kafka_clients import client_kwargs
from moe_core.runtime.settings import FleetSettings
from moe_core.stage.consumer import stage_router
from moe_core.stage.spec import Consumes, Stage
from tests.support.topic_reader import TopicReader

pytestmark = pytest.mark.infra
ATTEMPTS = 3


def _request(rid: str, text: str) -> bytes:
    return ChatRequest(response_id=rid, tenant_id="t", deadline_at=deadline_in(60), mode="moe-orchestrator",
                       messages=[ChatMessage(role="user", content=text)]).model_dump_json().encode()


def _answer(request: ChatRequest, content: str) -> Answer:
    return Answer(response_id=request.response_id, tenant_id="t", deadline_at=request.deadline_at,
                  mode=request.mode, content=content)


@pytest.mark.parametrize("path", ["bus", "stage"])
async def test_poison_and_oversized_messages_are_dead_lettered_and_the_partition_moves_on(
        infra: dict[str, str], namespace: str, path: str) -> None:
    settings = FleetSettings(kafka_bootstrap=infra["kafka"], topic_namespace=namespace, topic_partitions=1,
                             service_name="poison-test", consumer_workers=1, retry_base_s=0.05, retry_cap_s=0.2,
                             retry_max_attempts=ATTEMPTS)
    bus = Bus(settings)
    await bus.ensure_topics()
    calls: Counter[str] = Counter()

    async def handle(request: ChatRequest) -> None:
        text = request.messages[-1].content
        calls[request.response_id] += 1
        if text == "oversize":  # an output the broker refuses: more than its 1 MiB
            await bus.publish(_answer(request, "x" * 2_000_000), bus.topics.answers)
        if text == "flaky":
            raise ConnectionError("the store went away")
        if text == "poison":
            raise ValueError("cannot be processed")
        await bus.publish(_answer(request, f"answered {text}"), bus.topics.answers)

    if path == "bus":
        bus.subscribe(bus.topics.requests, ChatRequest, handle)
    else:
        stage = Stage(name="poison-test", settings=FleetSettings, build=lambda res: None, needs=(),
                      consumes=(Consumes("requests", ChatRequest, "on_request"),), publishes=("answers",),
                      summary="a test stage")
        router, _ = stage_router(stage, settings, bus, {"on_request": handle})
        bus.broker.include_router(router)
    rid = {kind: f"{kind}-{uuid.uuid4().hex[:8]}" for kind in ("oversize", "flaky", "poison", "bytes", "next")}
    producer = AIOKafkaProducer(**client_kwargs(bootstrap=infra["kafka"]))
    await producer.start()
    await bus.broker.start()
    try:
        async with TopicReader(infra["kafka"], bus.topics.answers, bus.topics.deadletter) as reader:
            for kind in ("oversize", "flaky", "poison", "bytes", "next"):  # one partition: in this order
                body = b'{"not": "a request"' if kind == "bytes" else _request(rid[kind], kind)
                await producer.send_and_wait(bus.topics.requests, body, key=rid[kind].encode())

            answer = (await reader.wait(bus.topics.answers, lambda a: a["response_id"] == rid["next"]))[0]
            assert answer["content"] == "answered next"
            letters = await reader.wait(bus.topics.deadletter, count=4)
    finally:
        await bus.close()
        await producer.stop()

    by_rid: dict[str, dict[str, Any]] = {letter["response_id"]: letter for letter in letters}
    oversize = by_rid[rid["oversize"]]
    assert oversize["error_type"] == "message_too_large" and "MessageSizeTooLargeError" in oversize["reason"]
    assert oversize["source_topic"] == bus.topics.requests and '"oversize"' in oversize["payload"]
    assert calls[rid["oversize"]] == 1  # never retried
    flaky = by_rid[rid["flaky"]]
    assert flaky["error_type"] == "retries_exhausted" and f"{ATTEMPTS} attempts" in flaky["reason"]
    assert "the store went away" in flaky["reason"] and calls[rid["flaky"]] == ATTEMPTS
    assert by_rid[rid["poison"]]["error_type"] == "ValueError" and calls[rid["poison"]] == 1
    assert by_rid[rid["bytes"]]["error_type"] == "validation_error"
    assert not reader.on(bus.topics.answers, lambda a: a["response_id"] in (rid["oversize"], rid["poison"]))
    assert len(letters) == 4 and calls[rid["next"]] == 1


def test_backoff_doubles_up_to_its_cap() -> None:
    from moe_core.runtime.redelivery import Redelivery

    assert [Redelivery(0.5, 30, 10).delay(n) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
