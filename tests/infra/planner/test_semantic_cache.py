"""Planner routing on the real servers: Chroma (semantic cache, router), Redis (plan cache), Kafka.

One planner app per module (its own topic namespace and cache collection), a scripted inference server
in-process. The merger's part (an Answer carrying the plan's cache_key) is played by the test.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

import moe_core.knowledge.question_vectors as question_vectors
from moe_core.contracts import (
    Answer,
    ChatMessage,
    ChatRequest,
    Envelope,
    Feedback,
    ModelUse,
    Topics,
    Usage,
    deadline_in,
)
from moe_core.knowledge.static_embedding import MODEL_ID as STATIC_MODEL_ID
from moe_core.knowledge.static_embedding import get_static_embedder
from moe_core.llm.inference import InferenceClient, InferenceConfig
from moe_core.runtime.kafka_clients import client_kwargs
from moe_core.runtime.stores import redis_client
from planner import router as router_module
from planner.app import Planner, create_app
from planner.cache_index import decode_vector
from planner.cache_text import normalise
from planner.router import SemanticRouter
from planner.semantic_cache import SemanticCache, cache_key, cache_scope
from planner.settings import PlannerSettings
from planner.vectors import Vectors
from tests.support.chaos_bus import wait_consumed
from tests.support.namespaces import new_namespace
from tests.support.scripted_llm import create_app as scripted_app
from tests.support.store_calls import store_ops
from tests.support.topic_reader import TopicReader

pytestmark = pytest.mark.infra
PLAN = json.dumps({"tasks": [{"category": "technical_support", "instruction": "answer the question"}]})
# Answers long enough to be cached (the original's minimum, MOE_CACHE_MIN_ANSWER_CHARS: 150 characters)
WIFI = ("Press Fn+F5 (or the key with the antenna symbol) to switch the radio on, then open Settings, Network & "
        "Internet, Wi-Fi, and turn Wi-Fi on; pick your network and enter its password.")
PORT = ("PostgreSQL listens on TCP port 5432 by default; on Debian 12 the packaged cluster 15/main uses it unless "
        "another cluster already holds it (see port in postgresql.conf and pg_lsclusters).")
STICKY = ("On a directory the sticky bit (chmod +t, shown as t in ls -ld) lets only a file's owner, the "
          "directory's owner or root delete or rename the files in it, as on /tmp, whatever the write permissions.")
UMASK = ("umask 027 removes write permission for the group and every permission for others from new files and "
         "directories: a new file gets 640 (rw-r-----) and a new directory 750 (rwxr-x---) by default on Linux.")
RHINE = ("No. The Danube (about 2,850 km) is longer than the Rhine (about 1,230 km); the Danube is the second "
         "longest river in Europe after the Volga, the Rhine only about the twelfth.")


def _chat(question: str, tenant: str = "tenant-a") -> ChatRequest:
    return ChatRequest(response_id=f"r{uuid.uuid4().hex[:12]}", tenant_id=tenant, deadline_at=deadline_in(60),
                       mode="moe-orchestrator", messages=[ChatMessage(role="user", content=question)])


class Harness:
    def __init__(self, planner: Planner, llm: Any, topics: Topics, producer: AIOKafkaProducer,
                 reader: TopicReader, settings: PlannerSettings, inference: InferenceClient) -> None:
        self.planner, self.llm, self.topics, self.producer, self.reader = planner, llm, topics, producer, reader
        self.settings, self.inference = settings, inference

    def llm_calls(self) -> int:
        return len(self.llm.state.scripted.get_calls())

    async def send(self, message: Envelope, topic: str) -> None:
        await self.producer.send_and_wait(topic, message.model_dump_json().encode(),
                                          key=message.response_id.encode())

    async def ask(self, question: str, tenant: str = "tenant-a") -> str:
        request = _chat(question, tenant)
        await self.send(request, self.topics.requests)
        return request.response_id

    async def outcome(self, rid: str) -> tuple[str, dict[str, Any]]:
        """('plan', plan) or ('answer', answer): whichever the planner published for this request."""
        def mine(body: dict[str, Any]) -> bool:
            return bool(body["response_id"] == rid)
        async def first(topic: str) -> tuple[str, dict[str, Any]]:
            return topic, (await self.reader.wait(topic, mine))[0]
        done, pending = await asyncio.wait([asyncio.create_task(first(self.topics.plans)),
                                            asyncio.create_task(first(self.topics.answers))],
                                           return_when=asyncio.FIRST_COMPLETED, timeout=40)
        for task in pending:
            task.cancel()
        assert done, f"the planner published nothing for {rid}"
        topic, body = done.pop().result()
        return ("plan" if topic == self.topics.plans else "answer"), body


async def eventually(check: Callable[[], Awaitable[Any]], timeout_s: float = 20) -> Any:
    """Await a state the system reaches asynchronously (polls the real store)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not (result := await check()):
        assert loop.time() < end, "the expected state was not reached"
        await asyncio.sleep(0.05)
    return result


@pytest.fixture(scope="module")
async def harness(infra: dict[str, str]) -> AsyncIterator[Harness]:
    namespace = new_namespace("t")
    llm = scripted_app({"models": ["p"], "rules": [{"reply": PLAN}]})
    settings = PlannerSettings(topic_namespace=namespace, kafka_bootstrap=infra["kafka"], redis_url=infra["redis"],
                               chroma_url=infra["chroma"],
                               inference_servers='[{"name":"s","url":"http://s","models":["p"],"max_retries":0}]')
    inference = InferenceClient(InferenceConfig.from_settings(settings),
                                httpx.AsyncClient(transport=httpx.ASGITransport(app=llm)))
    app = create_app(settings, inference=inference)
    planner: Planner = app.state.planner
    topics = Topics.for_namespace(namespace)
    producer = AIOKafkaProducer(**client_kwargs(bootstrap=infra["kafka"]), linger_ms=0)
    async with app.router.lifespan_context(app):
        await producer.start()
        try:
            async with TopicReader(infra["kafka"], topics.plans, topics.answers, topics.ingest) as reader:
                yield Harness(planner, llm, topics, producer, reader, settings, inference)
        finally:
            await producer.stop()
            assert planner.cache is not None and planner.vectors is not None
            await planner.vectors.drop(planner.cache.name)


async def test_repeat_and_paraphrase_are_answered_from_the_cache_without_a_model_call(harness: Harness) -> None:
    question = "How do I turn on the wifi on my Lenovo laptop?"
    rid = await harness.ask(question)
    kind, plan = await harness.outcome(rid)
    assert kind == "plan" and plan["cache_key"] and plan["few_shot"] == []
    # the merger answers; the planner stores the answer under the plan's cache key
    models = [ModelUse(model="expert-a", category="technical_support")]
    await harness.send(Answer(response_id=rid, tenant_id="tenant-a", deadline_at=deadline_in(60),
                              mode="moe-orchestrator", content=WIFI,
                              usage=Usage(prompt_tokens=50, completion_tokens=12), model_calls=2,
                              experts_used=["technical_support"], cache_key=plan["cache_key"], question=question,
                              models_used=models), harness.topics.answers)
    cache = harness.planner.cache
    assert cache is not None
    collection = await harness.planner.vectors.collection(cache.name)  # type: ignore[union-attr]
    await eventually(lambda: _has(collection, plan["cache_key"]))

    # the planner also keeps the answer as an exact repeat for the gateway
    exact = await eventually(lambda: cache.exact.answer(_chat(question)))
    assert exact.content == WIFI

    calls = harness.llm_calls()
    for repeat in (question, "How can I switch on the wifi on my Lenovo laptop?"):
        rid2 = await harness.ask(repeat)
        kind, answer = await harness.outcome(rid2)
        assert kind == "answer", f"{repeat!r} was planned instead of answered from the cache"
        assert answer["cache_hit"] is True and answer["model_calls"] == 0
        assert answer["usage"] == {"prompt_tokens": 0, "completion_tokens": 0}
        assert answer["content"] == WIFI
        assert answer["cache_key"] == plan["cache_key"] and answer["question"] == repeat
        assert answer["models_used"] == [m.model_dump() for m in models]
        assert harness.reader.on(harness.topics.plans, lambda b, r=rid2: b["response_id"] == r) == []
    assert harness.llm_calls() == calls  # no model call for either
    # once the planner consumed every answer, the hits' among them: nothing to learn (the first answer was learned
    # when the merger composed it), no ingest event (issue 52)
    await wait_consumed(harness.settings.kafka_bootstrap, [harness.topics.answers])
    with pytest.raises(AssertionError):  # the old planner's event was on the topic by then; the reader polls on
        await harness.reader.wait(harness.topics.ingest, timeout_s=3)

    # a near miss is planned as usual, with the cached answer as a few-shot example only
    rid3 = await harness.ask("How do I turn off the wifi on my Lenovo laptop?")
    kind, near = await harness.outcome(rid3)
    assert kind == "plan" and [f["question"] for f in near["few_shot"]] == [question]
    # another tenant never sees tenant-a's entry
    kind, other = await harness.outcome(await harness.ask(question, tenant="tenant-b"))
    assert kind == "plan" and other["few_shot"] == []

    # negative feedback flags the entry: the same question is planned again, without that example
    await harness.send(Feedback(response_id=rid, tenant_id="tenant-a", deadline_at=deadline_in(60), rating=1,
                                cache_key=plan["cache_key"], question=question, models_used=models),
                       harness.topics.feedback)
    await eventually(lambda: _flagged(collection, plan["cache_key"]))
    assert await cache.exact.answer(_chat(question)) is None  # gone for the gateway too
    kind, again = await harness.outcome(await harness.ask(question))
    assert kind == "plan" and again["few_shot"] == [] and again["cache_key"] != plan["cache_key"]


async def test_the_edges_exact_repeat_is_not_learned_again(harness: Harness) -> None:
    """The edge answers an exact repeat from Redis and publishes its Answer to `answers` (the record keeps it): the
    planner publishes no ingest event for it, as for its own semantic hits (graph-ingest skips a hit's: issue 52)."""
    rid = f"r{uuid.uuid4().hex[:12]}"
    models = [ModelUse(model="expert-m", category="medical_consult")]
    hit = Answer(response_id=rid, tenant_id="tenant-a", deadline_at=deadline_in(60), mode="moe-orchestrator",
                 content=UMASK, cache_hit=True, question="What does umask 027 do?", models_used=models)
    await harness.send(hit, harness.topics.answers)
    await wait_consumed(harness.settings.kafka_bootstrap, [harness.topics.answers])
    with pytest.raises(AssertionError):
        await harness.reader.wait(harness.topics.ingest, lambda b: b["response_id"] == rid, timeout_s=3)


async def test_a_cache_hits_answer_is_skipped_unparsed_and_a_composed_one_still_fills_the_cache(
        harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache hit's Answer, published as the fleet publishes it (the planner's bus: its semantic hits; the edge's
    exact repeats likewise), carries x-moe-cache-hit, and the planner's write-behind acknowledges it without parsing
    it (issue 52: a hit cost the planner a parse and a handling for nothing); an Answer the fleet composed, on the
    same topic just after, is parsed and stored as ever. The record still gets the hit (it reads the topic)."""
    parsed: list[str] = []  # the response_id of every Answer the planner parses
    validate = Answer.model_validate_json

    def spy(data: str | bytes, *args: Any, **kwargs: Any) -> Answer:
        answer = validate(data, *args, **kwargs)
        parsed.append(answer.response_id)
        return answer

    monkeypatch.setattr(Answer, "model_validate_json", spy)
    question = "What does the sticky bit do on a directory?"
    rid = await harness.ask(question)
    kind, plan = await harness.outcome(rid)
    assert kind == "plan" and plan["cache_key"]
    hit = Answer(response_id=f"r{uuid.uuid4().hex[:12]}", tenant_id="tenant-a", deadline_at=deadline_in(60),
                 mode="moe-orchestrator", content=STICKY, cache_hit=True, cache_key=plan["cache_key"],
                 question=question)
    composed = Answer(response_id=rid, tenant_id="tenant-a", deadline_at=deadline_in(60), mode="moe-orchestrator",
                      content=STICKY, cache_key=plan["cache_key"], question=question)
    bus = harness.planner.bus
    await bus.publish(hit, harness.topics.answers)
    await bus.publish(composed, harness.topics.answers)
    cache = harness.planner.cache
    assert cache is not None
    assert (await eventually(lambda: cache.exact.answer(_chat(question)))).content == STICKY  # the composed one
    await wait_consumed(harness.settings.kafka_bootstrap, [harness.topics.answers])  # the hit's offset committed too
    assert rid in parsed and hit.response_id not in parsed
    [recorded] = await harness.reader.wait(harness.topics.answers, lambda b: b["response_id"] == hit.response_id)
    assert recorded["cache_hit"] is True  # on the topic for every other reader


async def test_a_redelivered_request_republishes_the_same_cached_answer(harness: Harness) -> None:
    question = "Which port does PostgreSQL listen on by default in Debian 12?"
    rid = await harness.ask(question)
    _, plan = await harness.outcome(rid)
    await harness.send(Answer(response_id=rid, tenant_id="tenant-a", deadline_at=deadline_in(60),
                              mode="moe-orchestrator", content=PORT, cache_key=plan["cache_key"], question=question),
                       harness.topics.answers)
    collection = await harness.planner.vectors.collection(harness.planner.cache.name)  # type: ignore[union-attr]
    await eventually(lambda: _has(collection, plan["cache_key"]))
    request = ChatRequest(response_id=f"r{uuid.uuid4().hex[:12]}", tenant_id="tenant-a", deadline_at=deadline_in(60),
                          mode="moe-orchestrator", messages=[ChatMessage(role="user", content=question)])
    await harness.send(request, harness.topics.requests)
    await harness.send(request, harness.topics.requests)  # at-least-once: the same request again
    answers = await harness.reader.wait(harness.topics.answers, lambda b: b["response_id"] == request.response_id,
                                        count=2)
    assert answers[0]["content"] == answers[1]["content"] == PORT and answers[0]["cache_hit"]
    assert answers[0]["cache_key"] == answers[1]["cache_key"] == plan["cache_key"]


async def test_plan_cache_skips_the_planner_model_for_a_repeated_question(harness: Harness) -> None:
    question = f"Compare Wi-Fi 6 and Wi-Fi 7 for an office of {uuid.uuid4().int % 900 + 100} people"  # complex
    kind, first = await harness.outcome(await harness.ask(question))
    assert kind == "plan" and first["source"] == "llm" and first["complexity"] == "complex"
    calls = harness.llm_calls()
    kind, second = await harness.outcome(await harness.ask(question, tenant="tenant-c"))
    assert kind == "plan" and second["source"] == "plan_cache" and second["tasks"] == first["tasks"]
    assert second["usage"] == {"prompt_tokens": 0, "completion_tokens": 0} and harness.llm_calls() == calls


async def test_router_and_trivial_questions_skip_the_planner_model(harness: Harness) -> None:
    calls = harness.llm_calls()
    kind, routed = await harness.outcome(await harness.ask("Write a limerick about a dog"))
    assert kind == "plan" and routed["source"] == "router"
    assert [(t["category"], t["instruction"]) for t in routed["tasks"] if t["kind"] == "expert"] == [
        ("creative_writer", "Write a limerick about a dog")]  # (augmenters may add e.g. a graph task)
    kind, trivial = await harness.outcome(await harness.ask("Who painted the Mona Lisa?"))
    assert kind == "plan" and (trivial["source"], trivial["complexity"]) == ("router", "trivial")
    assert len(trivial["tasks"]) == 1
    kind, unclear = await harness.outcome(await harness.ask("Can you help me think through a decision I have to make?"))
    assert kind == "plan" and unclear["source"] == "llm"
    assert harness.llm_calls() == calls + 1  # only the unclear one asked the planner model


async def test_a_text_only_question_is_never_given_to_the_vision_expert(harness: Harness) -> None:
    """Found under `make up`: "What colour is the car in the picture?" (a vision prototype) and "Name three
    colours." were routed to the vision expert with no image. A request with images goes to it before any routing;
    a text-only one is routed elsewhere, and the planner model is not offered the category."""
    for question in ("What colour is the car in the picture?", "What breed is the dog in this picture?"):
        kind, plan = await harness.outcome(await harness.ask(question))
        assert kind == "plan" and plan["tasks"]
        assert "vision" not in [t.get("category") for t in plan["tasks"]], (question, plan["tasks"])
    before = len(harness.llm.state.scripted.get_calls())
    kind, plan = await harness.outcome(await harness.ask(
        "Could you describe in detail everything one would see in an old photograph of a 1962 kitchen, and why?"))
    assert kind == "plan" and plan["source"] == "llm"
    [call] = harness.llm.state.scripted.get_calls()[before:]
    schema = json.dumps(call["body"]["response_format"])
    assert "technical_support" in schema and "vision" not in schema  # the categories the model may choose


async def test_a_planned_requests_writes_go_with_its_stored_outcome(harness: Harness, infra: dict[str, str]) -> None:
    """The planner model's budget give-back, the plan cache and the cache's pending entry are written with the stored
    outcome, in one round trip before the plan is published (moe_core.runtime.redis_batch); each was a round trip of
    its own before. No MiniLM vector is shared with graph-rag: the planner embeds with the static model only."""
    cache = harness.planner.cache
    assert cache is not None
    await eventually(lambda: _quiet(cache))  # no Chroma write of an earlier test's entry in flight
    question = "Compare the tax rules for remote workers in Germany and France, then draft an email to HR about it."
    before = store_ops("redis")
    rid = await harness.ask(question)
    kind, plan = await harness.outcome(rid)
    ops = {op: n - before.get(op, 0) for op, n in store_ops("redis").items() if n - before.get(op, 0)}
    assert kind == "plan" and plan["source"] == "llm" and plan["cache_key"]
    redis = redis_client(infra["redis"])
    try:  # all of it is there by the time the plan is out
        assert harness.planner.plan_cache is not None
        assert await redis.exists(harness.planner.plan_cache.key("moe-orchestrator", question))
        assert await redis.exists(f"{cache._pending}:{plan['cache_key']}")
        text, _ = cache.vectors.embedded(question)  # no MiniLM vector to share: the router and the cache are static
        assert not await redis.exists(question_vectors.key(harness.settings.topic_namespace, text))
    finally:
        await redis.aclose()
    # the stored outcome's, the Cancel mark's and the plan cache's reads in one pipeline (planner.plan_cache.PlanRead),
    # the stored outcome with the writes, and the learned patterns' read unless this replica read them lately
    # (before: three more, the plan cache's read, its write and the outcome's on their own)
    assert ops.pop("zrangebyscore", 0) <= 1
    assert ops == {"pipeline": 2}


async def _quiet(cache: Any) -> bool:
    return not cache._writes._busy


async def test_a_rating_that_overtakes_its_answer_and_a_deleted_collection(harness: Harness) -> None:
    cache = harness.planner.cache
    assert cache is not None
    question = "Is the Rhine longer than the Danube?"
    request = ChatRequest(response_id=f"r{uuid.uuid4().hex[:12]}", tenant_id="tenant-a", deadline_at=deadline_in(60),
                          mode="moe-orchestrator", messages=[ChatMessage(role="user", content=question)])
    scope = cache_scope(request)
    assert scope is not None
    key = cache_key(scope, question, request.response_id)
    await cache.remember(key, scope, request, question)
    bad = Feedback(response_id=request.response_id, tenant_id="tenant-a", deadline_at=deadline_in(60), rating=2,
                   cache_key=key)
    assert await cache.flag(bad) is False  # nothing stored yet ...
    answer = Answer(response_id=request.response_id, tenant_id="tenant-a", deadline_at=deadline_in(60),
                    mode="moe-orchestrator", content=RHINE, cache_key=key, question=question)
    assert await cache.store(answer) is False  # ... and the answer that arrives later is never stored
    assert (await cache.lookup(scope, question)).hit is None

    # an operator deletes the Chroma collection: lookups never touch Chroma (the index answers), and the next
    # answer's Chroma write re-creates it (its stale handle fails once: the answer is redelivered, stored again)
    vectors = harness.planner.vectors
    assert vectors is not None
    client = await vectors.client()
    await client.delete_collection(cache.name)
    assert (await cache.lookup(scope, question)).hit is None
    kind, plan = await harness.outcome(await harness.ask(question))
    assert kind == "plan" and plan["cache_key"]
    await harness.send(Answer(response_id=plan["response_id"], tenant_id="tenant-a", deadline_at=deadline_in(60),
                              mode="moe-orchestrator", content=RHINE, cache_key=plan["cache_key"],
                              question=question), harness.topics.answers)

    async def stored_again() -> bool:
        vectors.forget(cache.name)  # the test's own fresh handle
        return await _has(await vectors.collection(cache.name), plan["cache_key"])

    await eventually(stored_again, timeout_s=30)


async def test_router_prototypes_are_seeded_once(infra: dict[str, str]) -> None:
    vectors = Vectors(infra["chroma"])
    router = SemanticRouter(vectors, threshold=0.55, margin=0.15)
    await router.seed()
    await router.seed()  # idempotent: a second replica or a restart adds nothing
    collection = await vectors.collection(router.name)
    assert await collection.count() == sum(len(v) for v in router.prototypes.values())
    route = await router.route("What is the derivative of cos(x)?")
    assert route is not None and (route.category, route.clear) == ("math", True)
    # the in-memory comparison decides exactly what a Chroma query of the collection would
    for question in ("What is the derivative of cos(x)?", "Translate good night into Italian",
                     "My laptop does not boot after an update", "Can you help me think through a decision?"):
        [vector] = await vectors.embed([normalise(question)])
        found = await collection.query(query_embeddings=[vector], n_results=router_module.NEIGHBOURS,
                                       include=["distances", "metadatas"])
        via_chroma = router_module.decide(
            [(m["category"], d) for m, d in zip(found["metadatas"][0], found["distances"][0], strict=True)],
            router.threshold, router.margin)
        in_memory = await router.route(question)
        assert in_memory is not None and via_chroma is not None
        assert (in_memory.category, in_memory.clear) == (via_chroma.category, via_chroma.clear)
        assert abs(in_memory.distance - via_chroma.distance) < 1e-3


async def _has(collection: Any, key: str) -> bool:
    return bool((await collection.get(ids=[key]))["ids"])


async def _in_index(cache: Any, key: str) -> bool:
    return cache.index.get(key) is not None


async def _not_in_index(cache: Any, key: str) -> bool:
    return cache.index.get(key) is None


async def _flagged(collection: Any, key: str) -> bool:
    found = await collection.get(ids=[key], include=["metadatas"])
    return bool(found["ids"]) and bool(found["metadatas"][0].get("flagged"))


async def test_an_answer_shorter_than_the_originals_minimum_is_not_cached(harness: Harness) -> None:
    """CACHE_MIN_RESPONSE_LEN: the original stores an answer of 150 characters or more only."""
    cache = harness.planner.cache
    assert cache is not None and cache.settings.cache_min_answer_chars == 150
    stored = {}
    for content in ("5432.", "x" * 149, PORT):
        question = f"Which port does PostgreSQL use, case {len(content)}?"
        request = _chat(question)
        scope = cache_scope(request)
        assert scope is not None
        key = cache_key(scope, question, request.response_id)
        await cache.remember(key, scope, request, question)
        stored[len(content)] = await cache.store(Answer(
            response_id=request.response_id, tenant_id="tenant-a", deadline_at=deadline_in(60),
            mode="moe-orchestrator", content=content, cache_key=key, question=question))
    assert stored == {5: False, 149: False, len(PORT): True}


async def test_the_store_takes_the_lookups_vector_and_embeds_nothing_on_any_replica(harness: Harness) -> None:
    """With the static cache (the default) no MiniLM runs for the cache: not at the lookup, not at the store (which
    embeds the question statically again: nothing is carried), and the entry names its model. With the MiniLM
    cache the question is embedded once per request: the replica that stores the answer (here: one whose embedder
    never saw the question) takes the vector remembered with the pending entry; a pending entry without one
    (remembered before any lookup, as by an older planner) is embedded at the store."""
    static, vectors = harness.planner.cache, harness.planner.vectors
    assert static is not None and vectors is not None and static.model == STATIC_MODEL_ID
    embedder = vectors.embedder
    question = f"How do I rotate the nginx access log every {uuid.uuid4().int % 900 + 100} megabytes?"
    request = _chat(question)
    scope = cache_scope(request)
    assert scope is not None
    key = cache_key(scope, question, request.response_id)
    before = embedder.computations
    assert (await static.lookup(scope, question)).hit is None
    await static.remember(key, scope, request, question)
    assert await static.store(Answer(response_id=request.response_id, tenant_id="tenant-a",
                                     deadline_at=deadline_in(60), mode="moe-orchestrator", content=PORT,
                                     cache_key=key, question=question))
    assert embedder.computations == before  # no MiniLM
    got = static.index.get(key)
    assert got is not None and got.model == STATIC_MODEL_ID
    assert decode_vector(got.vector).tolist() == get_static_embedder().embed([normalise(question)])[0].tolist()

    cache = SemanticCache(vectors, static.redis, harness.settings.model_copy(update={"cache_embedding": "minilm"}),
                          static.bus)  # a MiniLM-cache replica beside it (its index: this test's writes)
    cache.index.loaded.set()
    question = question.replace("rotate", "truncate")
    request = _chat(question)
    key = cache_key(scope, question, request.response_id)
    assert (await cache.lookup(scope, question)).hit is None  # the one computation of this request
    await cache.remember(key, scope, request, question)
    _, looked_up = vectors.embedded(question)
    assert looked_up is not None
    embedder.clear()  # as on another replica
    computed = embedder.computations
    assert await cache.store(Answer(response_id=request.response_id, tenant_id="tenant-a",
                                    deadline_at=deadline_in(60), mode="moe-orchestrator", content=PORT,
                                    cache_key=key, question=question))
    assert embedder.computations == computed
    entry = cache.index.get(key)
    assert entry is not None and decode_vector(entry.vector).tolist() == looked_up.tolist()  # exact float32

    older_question = question.replace("How do I", "How can I")
    older = _chat(older_question)
    older_key = cache_key(scope, older_question, older.response_id)
    embedder.clear()
    await cache.remember(older_key, scope, older, older_question)  # no lookup before it: no vector to keep
    assert await cache.store(Answer(response_id=older.response_id, tenant_id="tenant-a",
                                    deadline_at=deadline_in(60), mode="moe-orchestrator", content=PORT,
                                    cache_key=older_key, question=older_question))
    assert embedder.computations == computed + 1
    stored = cache.index.get(older_key)
    assert stored is not None
    fresh = embedder.embed([normalise(older_question)])[0]
    assert decode_vector(stored.vector).tolist() == fresh.tolist()


async def test_a_new_replica_rebuilds_its_index_from_the_topic_and_decides_as_chroma_would(harness: Harness) -> None:
    """Last in the module: the second replica joins the planner group (a rebalance) while it runs."""
    cache = harness.planner.cache
    assert cache is not None and harness.planner.vectors is not None
    stored = {}
    for question, content in (("What does the sticky bit do on a Linux directory?", STICKY),
                              ("What does umask 027 mean for new files on Linux?", UMASK)):
        rid = await harness.ask(question)
        _, plan = await harness.outcome(rid)
        await harness.send(Answer(response_id=rid, tenant_id="tenant-a", deadline_at=deadline_in(60),
                                  mode="moe-orchestrator", content=content, cache_key=plan["cache_key"],
                                  question=question), harness.topics.answers)
        stored[content] = plan["cache_key"]
    key, flagged = stored[STICKY], stored[UMASK]
    await eventually(lambda: _in_index(cache, flagged))
    await harness.send(Feedback(response_id="r-umask", tenant_id="tenant-a", deadline_at=deadline_in(60), rating=1,
                                cache_key=flagged), harness.topics.feedback)
    await eventually(lambda: _not_in_index(cache, flagged))  # flagged: gone from the first replica's index
    collection = await harness.planner.vectors.collection(cache.name)
    await eventually(lambda: _has(collection, key))  # written into Chroma by its answer's handler

    # its own model client: the runtime closes a stage's client when the stage stops, and the module's later
    # tests still plan with the first one's
    own = InferenceClient(InferenceConfig.from_settings(harness.settings),
                          httpx.AsyncClient(transport=httpx.ASGITransport(app=harness.llm)))
    second_app = create_app(harness.settings, inference=own)
    async with second_app.router.lifespan_context(second_app):  # started: the index was read from the topic
        second = second_app.state.planner.cache
        assert second is not cache and second.index.loaded.is_set()
        entry = second.index.get(key)
        assert entry is not None and entry.answer == STICKY
        assert second.index.get(flagged) is None  # its flag came after it on the topic
        scope = cache_scope(_chat(question))
        assert scope is not None
        paraphrase = "What does the sticky bit do on a directory in Linux?"
        lookup = await second.lookup(scope, paraphrase)
        assert lookup.hit is not None and lookup.hit.key == key and lookup.hit.answer == STICKY
        # the index's candidates are a filtered Chroma query's, with the same distances (over the entries the
        # Chroma copy holds: the earlier test deleted the collection, the topic kept the entries before it)
        vector = (await second.embed(normalise(paraphrase))).tolist()  # the cache's model's (static) vector
        where = {"$and": [{"scope": scope}, {"flagged": False}]}
        found = await collection.query(query_embeddings=[vector], n_results=4, include=["distances"], where=where)
        in_chroma = set((await collection.get(where=where))["ids"])
        in_memory = [(e, d) for e, d in second.index.nearest(scope, vector, 100, newer_than=0)
                     if e.cache_key in in_chroma][:4]
        assert [e.cache_key for e, _ in in_memory] == found["ids"][0]
        assert all(abs(d - c) < 1e-4 for (_, d), c in zip(in_memory, found["distances"][0], strict=True))

