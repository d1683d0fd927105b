"""The planner's Redis round trips per request, counted (moe_store_seconds) against the real Redis, Kafka and Chroma:
a trivial request and a planned one, from the request to its cache entry written into Chroma (issue 52). Before: ten per
trivial request (a GET of the fleet configuration before each of its four messages, the plan cache's GET of its own,
five pipelines). Now the configuration is read only before a handler that may call a model (Consumes.models) and the
plan cache's read rides in the stored outcome's pipeline (planner.plan_cache.PlanRead). Counted, never timed."""

from __future__ import annotations

import asyncio
import contextvars
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from moe_core.contracts import Answer, ChatMessage, ChatRequest, Topics, deadline_in
from moe_core.llm.inference import InferenceClient, InferenceConfig
from moe_core.llm.inference.live import LiveOverrides
from moe_core.runtime.kafka_clients import client_kwargs
from moe_core.runtime.observability.metrics import STAGE_SECONDS
from moe_core.runtime.observability.stores import _CALLS
from moe_core.runtime.stores import redis_client
from planner.app import Planner, create_app
from planner.settings import PlannerSettings
from tests.support.namespaces import new_namespace
from tests.support.scripted_llm import create_app as scripted_app
from tests.support.topic_reader import TopicReader

pytestmark = pytest.mark.infra
PLAN = json.dumps({"tasks": [{"category": "technical_support", "instruction": "answer the question"}]})
ANSWER = ("Leonardo da Vinci painted the Mona Lisa between about 1503 and 1519; it hangs in the Louvre in Paris, "
          "behind glass, and is one of the most visited paintings in the world.")
TRIVIAL_MAX = 6  # the request (configuration GET, 2 pipelines), the answer (2 pipelines, and 1 after the Chroma write)


class Harness:
    def __init__(self, planner: Planner, topics: Topics, producer: AIOKafkaProducer, reader: TopicReader,
                 own: Counter[tuple[str, str]]) -> None:
        self.planner, self.topics, self.producer, self.reader = planner, topics, producer, reader
        self.own = own  # the store calls of the planner's own tasks (started in a context that counts them)

    def _redis(self) -> dict[str, float]:
        return {op: float(n) for (store, op), n in self.own.items() if store == "redis"}

    async def handled(self, step: Callable[[], Awaitable[Any]], **messages: int) -> tuple[Any, dict[str, float]]:
        """Run `step`, wait until the planner handled the given number of messages more of each topic (by field
        name); (step's result, the Redis round trips meanwhile by operation)."""
        topics = {getattr(self.topics, field): n for field, n in messages.items()}
        before, handled = self._redis(), {topic: _handled(topic) for topic in topics}
        result = await step()
        loop = asyncio.get_running_loop()
        end = loop.time() + 60
        while any(_handled(topic) < handled[topic] + n for topic, n in topics.items()):
            assert loop.time() < end, f"the planner did not handle {messages}"
            await asyncio.sleep(0.02)
        # only the planner's own calls: the process's counts also hold what earlier tiers left running in this
        # worker's event loop (a control plane's settle sweeper, another stage's inference calls and heartbeats)
        trips = {op: n - before.get(op, 0) for op, n in self._redis().items()}
        trips = {op: n for op, n in trips.items() if n}
        extra = sum(_handled(topic) - handled[topic] - n for topic, n in topics.items())
        if extra and set(topics) == {self.topics.requests}:  # a rebalance on a loaded machine redelivered a request:
            # a repeat costs the configuration's GET and the pipeline that finds its stored outcome, nothing more
            trips = {op: n - extra for op, n in trips.items()}
        return result, trips

    async def send(self, message: Any, topic: str) -> None:
        await self.producer.send_and_wait(topic, message.model_dump_json().encode(), key=message.response_id.encode())

    async def plan(self, question: str) -> tuple[dict[str, Any], dict[str, float]]:
        request = ChatRequest(response_id=f"r{uuid.uuid4().hex[:12]}", tenant_id="t-trips", deadline_at=deadline_in(60),
                              mode="moe-orchestrator", messages=[ChatMessage(role="user", content=question)])

        async def ask() -> dict[str, Any]:
            await self.send(request, self.topics.requests)
            return (await self.reader.wait(self.topics.plans, lambda b: b["response_id"] == request.response_id))[0]
        return await self.handled(ask, requests=1)

    async def answer(self, plan: dict[str, Any]) -> dict[str, float]:
        """The merger's answer to `plan`, cached: its handling (the entry published and written into Chroma) and the
        entry's indexing."""
        answer = Answer(response_id=plan["response_id"], tenant_id="t-trips", deadline_at=deadline_in(60),
                        mode="moe-orchestrator", content=ANSWER, cache_key=plan["cache_key"], question=plan["question"])
        # the answer's handler publishes the entry and writes it into Chroma; this replica's index reads it back
        _, trips = await self.handled(lambda: self.send(answer, self.topics.answers), answers=1, cache_entries=1)
        return trips


def _handled(topic: str) -> float:
    return sum(s.value for m in STAGE_SECONDS.collect() for s in m.samples
               if s.name.endswith("_count") and s.labels.get("topic") == topic and s.labels.get("service") == "planner")


@pytest.fixture(scope="module")
async def harness(infra: dict[str, str]) -> AsyncIterator[Harness]:
    namespace = new_namespace("t")
    llm = scripted_app({"models": ["p"], "rules": [{"reply": PLAN}]})
    settings = PlannerSettings(topic_namespace=namespace, kafka_bootstrap=infra["kafka"], redis_url=infra["redis"],
                               chroma_url=infra["chroma"],
                               inference_servers='[{"name":"s","url":"http://s","models":["p"],"max_retries":0}]')
    overlay = redis_client(infra["redis"])  # the console's configuration, read as the fleet's planner reads it
    inference = InferenceClient(InferenceConfig.from_settings(settings),
                                httpx.AsyncClient(transport=httpx.ASGITransport(app=llm)),
                                live=LiveOverrides(overlay, namespace))
    app = create_app(settings, inference=inference)
    planner: Planner = app.state.planner
    topics = Topics.for_namespace(namespace)
    producer = AIOKafkaProducer(**client_kwargs(bootstrap=infra["kafka"]), linger_ms=0)
    own: Counter[tuple[str, str]] = Counter()
    counting = contextvars.copy_context()
    counting.run(_CALLS.set, own)  # the planner's tasks, all started in its lifespan, count their store calls here
    started, finish = asyncio.Event(), asyncio.Event()

    async def serve() -> None:
        async with app.router.lifespan_context(app):
            started.set()
            await finish.wait()

    serving = asyncio.get_running_loop().create_task(serve(), context=counting)
    await asyncio.wait({serving, asyncio.ensure_future(started.wait())}, return_when=asyncio.FIRST_COMPLETED)
    if serving.done():
        serving.result()  # the start failed: its error
    await producer.start()
    try:
        async with TopicReader(infra["kafka"], topics.plans) as reader:
            yield Harness(planner, topics, producer, reader, own)
    finally:
        await producer.stop()
        assert planner.cache is not None and planner.vectors is not None
        await planner.vectors.drop(planner.cache.name)
        finish.set()
        await serving
        await overlay.aclose()


async def test_a_trivial_request_costs_the_planner_six_round_trips(harness: Harness) -> None:
    plan, on_request = await harness.plan("Who painted the Mona Lisa?")
    assert (plan["source"], plan["complexity"]) == ("router", "trivial") and plan["cache_key"]
    # the configuration's GET; the stored outcome, the Cancel mark and the plan cache in one pipeline; the outcome
    # stored with the writes (pending cache entry, the question's vector) in another
    assert on_request == {"get": 1, "pipeline": 2}
    on_answer = await harness.answer(plan)
    # the answer: what to store and whether it was rated, then the exact repeat; after the Chroma write: sweep due,
    # rated before it was stored, and done. No configuration read: none of these handlers calls a model
    assert on_answer == {"pipeline": 3}
    total = sum(on_request.values()) + sum(on_answer.values())
    assert total <= TRIVIAL_MAX, f"{total} round trips per trivial request: {on_request} + {on_answer}"


async def test_a_planned_request_reads_the_plan_cache_with_its_stored_outcome(harness: Harness) -> None:
    """The planner model's plan (a full request): the same two pipelines, plus the learned patterns' read unless this
    replica read the tenant's lately; the cached plan is then found, with no GET of its own."""
    question = f"Compare Wi-Fi 6 and Wi-Fi 7 for an office of {uuid.uuid4().int % 900 + 100} people"
    plan, on_request = await harness.plan(question)
    assert plan["source"] == "llm"
    assert on_request.pop("zrangebyscore", 0) <= 1
    assert on_request == {"get": 1, "pipeline": 2}
    again, on_repeat = await harness.plan(question)
    assert again["source"] == "plan_cache" and again["tasks"] == plan["tasks"]
    assert on_repeat == {"get": 1, "pipeline": 2}
