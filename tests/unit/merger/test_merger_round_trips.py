"""The merger's Redis round trips per request, counted against the real Redis (issue 52): a plan and its results,
from the first message to the stored answer. Before: a GET of the fleet configuration's overlay before each message
(four for a plan of three tasks), though only the message that completes the request calls a model. Now the handlers
are declared models=False and the overlay rides in each message's own round trip (merger.reads), laid over the models'
configuration only when the request is composed: a changed overlay still picks the judge. Counted, never timed."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest
from faststream.kafka import TestKafkaBroker

from merger.app import create_app
from merger.settings import MergerSettings
from moe_core.contracts import Answer, Plan, PlannedTask, TaskResult, Usage, deadline_in
from moe_core.llm.inference import InferenceClient, InferenceConfig
from moe_core.llm.inference.live import FleetOverrides, LiveOverrides, live_key
from moe_core.llm.inference.servers import ModelRef
from moe_core.runtime.bus import Bus
from tests.support.counting_redis import OpsRedis
from tests.support.scripted_llm import create_app as scripted_llm

pytestmark = pytest.mark.infra  # real Redis; FastStream's in-memory broker (the Kafka hops are not counted here)
MODELS = '[{"name":"s","url":"http://s","models":["judge-model","other-judge"],"max_retries":0}]'


@pytest.fixture
async def counted(infra: dict[str, str]) -> Any:
    client = OpsRedis.from_url(infra["redis"], decode_responses=True)
    client.ops = Counter()
    yield client
    await client.aclose()


def _merger(namespace: str, redis: OpsRedis) -> tuple[Any, Bus, Any, list[Answer]]:
    llm = scripted_llm({"models": ["judge-model", "other-judge"], "rules": [
        {"model": "judge-model", "reply": "Tides follow the Moon."},
        {"model": "other-judge", "reply": "The Moon's pull makes the tides."}]})
    config = MergerSettings(topic_namespace=namespace, inference_servers=MODELS, thinking=False,
                            research_fallback=False, model_assignments='{"judge": ["judge-model"]}')
    inference = InferenceClient(InferenceConfig.from_settings(config),
                                httpx.AsyncClient(transport=httpx.ASGITransport(app=llm)),
                                live=LiveOverrides(redis, namespace))  # the overlay read as the fleet's merger reads it
    bus = Bus(config)
    app = create_app(config, bus=bus, inference=inference, redis=redis, manage_broker=False, sweeper=False)
    answers: list[Answer] = []
    bus.broker.subscriber(bus.topics.answers)(lambda message: answers.append(Answer.model_validate(message)))
    return app, bus, llm, answers


def _messages(rid: str) -> list[Plan | TaskResult]:
    tasks = [("t1", "expert", "general"), ("t2", "expert", "science"), ("g1", "graph", "knowledge_graph")]
    plan = Plan(response_id=rid, tenant_id="t", deadline_at=deadline_in(60), mode="moe-orchestrator",
                question="What about tides?", planner_model="planner-model", usage=Usage(prompt_tokens=3),
                tasks=[PlannedTask(task_id=t, kind=k, category=c, instruction=f"do {c}")  # type: ignore[arg-type]
                       for t, k, c in tasks])
    results = [TaskResult(response_id=rid, tenant_id="t", deadline_at=deadline_in(60), task_id=t, kind=k,  # type: ignore[arg-type]
                          category=c, content=f"{c}: the Moon.", confidence="medium", model="expert-model", server="s")
               for t, k, c in tasks]
    return [plan, *results]


async def _answer(namespace: str, redis: OpsRedis, rid: str) -> tuple[list[Answer], Any, Counter[str]]:
    _app, bus, llm, answers = _merger(namespace, redis)  # (the app holds the merger its handlers call)
    redis.ops.clear()
    async with TestKafkaBroker(bus.broker):
        for message in _messages(rid):
            await bus.publish(message, bus.topics.plans if isinstance(message, Plan) else bus.topics.results)
    return answers, llm, Counter(redis.ops)


async def test_a_plan_of_three_tasks_costs_the_merger_six_round_trips(counted: OpsRedis, namespace: str) -> None:
    answers, _, ops = await _answer(namespace, counted, f"r-{namespace}")
    [answer] = answers
    assert answer.content == "Tides follow the Moon." and not answer.error
    # each of the four messages: its write and the request's state, Cancel mark and overlay read back, in one
    # script; the claim (SET NX); the answer with its ingest event stored (a pipeline). No GET before a message
    assert ops == {"eval": 4, "pipeline": 1, "set": 1}, ops


async def test_the_overlay_read_with_the_state_picks_the_judge(counted: OpsRedis, namespace: str) -> None:
    """The console moved the judge role to another model: the request composed after it uses that model, with the
    overlay read in the messages' own round trips (a GET of its own is no longer made)."""
    overlay = FleetOverrides(version=3, roles={"judge": [ModelRef(model="other-judge")]})
    await counted.set(live_key(namespace), overlay.model_dump_json())
    try:
        answers, llm, ops = await _answer(namespace, counted, f"r2-{namespace}")
    finally:
        await counted.delete(live_key(namespace))
    [answer] = answers
    assert answer.content == "The Moon's pull makes the tides."
    assert [c["model"] for c in llm.state.scripted.get_calls()] == ["other-judge"]
    assert "get" not in ops


async def test_a_trivial_request_costs_the_merger_three_round_trips_and_no_claim(counted: OpsRedis,
                                                                                  namespace: str) -> None:
    """The fast path calls no model: its answer is written without the claim (the answer's SET NX keeps the first)."""
    rid = f"t-{namespace}"
    fields: dict[str, Any] = {"response_id": rid, "tenant_id": "t", "deadline_at": deadline_in(60)}
    plan = Plan(**fields, mode="moe-orchestrator", question="Hi?", complexity="trivial", source="router",
                tasks=[PlannedTask(task_id="d1", category="general", instruction="answer")])
    result = TaskResult(**fields, task_id="d1", category="general", content="Hello.", confidence="medium",
                        model="expert-model", server="s")
    _app, bus, llm, answers = _merger(namespace, counted)
    counted.ops.clear()
    async with TestKafkaBroker(bus.broker):
        await bus.publish(plan, bus.topics.plans)
        await bus.publish(result, bus.topics.results)
    [answer] = answers
    assert answer.content == "Hello." and not answer.error
    assert llm.state.scripted.get_calls() == []
    # each message's write and read back (one script each); the answer with its ingest event (a pipeline)
    assert Counter(counted.ops) == {"eval": 2, "pipeline": 1}, counted.ops
    assert not await counted.exists(f"merger:{namespace}:{rid}:claim")
