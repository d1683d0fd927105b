"""The merger's and the expert-worker's Redis round trips per message, merged into pipelines (issue 29), counted
with moe_store_seconds against the real Redis, the handlers on FastStream's in-memory broker and the models
scripted. Each count is the design, and each test also checks what the merge must keep:

- expert-worker, one task: the stored outcome, the Cancel mark, the switches and every score of the category's
  models (one pipeline), the model call's budget take, and its give-back sent with the stored outcome (one
  pipeline): 3 (was 7). A redelivery: 1, the stored result republished, no model call.
- merger, plan + three results, thinking + judge: each message stored and read back with the request's Cancel
  mark (4, one script each), the claim, the thinking's take, the judge's take with the thinking's give-back, and
  the answer with its ingest event and the judge's give-back (one transaction): 8 (was 12). A redelivery: 1.
- every give-back reaches Redis before the result or answer is published (the budget a settlement reads);
  a Cancel mark in Redis only (another process marked it) still stops the merger's model calls.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from faststream.kafka import TestKafkaBroker
from redis.asyncio import Redis

from expert_worker.app import create_app as expert_app
from expert_worker.settings import ExpertSettings
from merger.app import create_app as merger_app
from merger.settings import MergerSettings
from moe_core.contracts import Answer, ExpertTask, IngestEvent, Plan, PlannedTask, TaskResult, Usage, deadline_in
from moe_core.llm.inference import InferenceClient, InferenceConfig
from moe_core.llm.token_budget import TAKE, TokenBudgets
from moe_core.runtime import redis_batch
from moe_core.runtime.bus import Bus
from moe_core.runtime.stores import redis_client
from tests.support.in_memory import scripted_servers
from tests.support.scripted_llm import create_app as scripted_llm
from tests.support.store_calls import own_ops

pytestmark = pytest.mark.infra  # real Redis
BUDGET = 20_000


@pytest.fixture
async def timed(infra: dict[str, str], namespace: str) -> AsyncIterator[Redis]:
    """The stages' client (its round trips counted); the test's own reads go through the plain `redis` fixture."""
    client = redis_client(infra["redis"])
    yield client
    for prefix in ("merger", "expert:result", "moe:budget", "cancel"):
        await client.delete(*[k async for k in client.scan_iter(f"{prefix}:{namespace}:*")] or ["-"])
    await client.aclose()


def _with_budget(settings: Any, llm: Any, timed: Redis, namespace: str) -> tuple[InferenceClient, TokenBudgets]:
    """The stage's inference client (the scripted models in this process) with the requests' token budgets."""
    budgets = TokenBudgets(timed, namespace)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=llm))
    return InferenceClient(InferenceConfig.from_settings(settings), http, budgets=budgets), budgets


async def test_an_expert_task_in_three_round_trips_its_give_back_before_the_result(
        timed: Redis, redis: Redis, namespace: str) -> None:
    llm = scripted_llm({"models": ["expert-model", "other-model"],
                        "rules": [{"model": "expert-model", "reply": "Four."}]})
    settings = ExpertSettings(topic_namespace=namespace,
                              inference_servers=scripted_servers("expert-model", "other-model"),
                              expert_templates=json.dumps({"math": ["expert-model", "other-model"]}))
    inference, budgets = _with_budget(settings, llm, timed, namespace)
    bus = Bus(settings)
    expert_app(settings, bus=bus, inference=inference, redis=timed, manage_broker=False)
    rid = f"r-{namespace}"
    task = ExpertTask(response_id=rid, tenant_id="t", deadline_at=deadline_in(30), task_id="t1", category="math",
                      instruction="2+2?", question="2+2?")
    await budgets.open(rid, BUDGET, 60)
    await redis.script_load(TAKE)  # as on a Redis that has run one (else the first take also loads it: NOSCRIPT)
    seen: list[tuple[TaskResult, str | None]] = []

    @bus.broker.subscriber(bus.topics.results)
    async def on_result(message: dict[str, Any]) -> None:  # the budget as a settlement would read it now
        seen.append((TaskResult.model_validate(message), await redis.get(budgets.key(rid))))

    async with TestKafkaBroker(bus.broker):
        with own_ops("redis") as first:
            await bus.publish(task, bus.topics.tasks_expert)
        with own_ops("redis") as again:
            await bus.publish(task, bus.topics.tasks_expert)  # redelivered
    assert first == {"pipeline": 2, "evalsha": 1}  # outcome + mark + switches + scores, take, give-back + outcome
    assert again == {"pipeline": 1}  # the stored outcome (with the mark and scores): republished as stored
    [(result, left), (repeated, left_again)] = seen
    assert result.content and not result.error and len(llm.state.scripted.get_calls()) == 1
    assert repeated.model_dump() == result.model_dump()
    assert int(left or 0) == int(left_again or 0) == BUDGET - result.usage.total_tokens  # given back before publish


class MergerHarness:
    def __init__(self, namespace: str, timed: Redis) -> None:
        self.llm = scripted_llm({"models": ["judge-model", "think-model"], "rules": [
            {"model": "think-model", "reply": "Both say the Moon."},
            {"model": "judge-model", "reply": "The Moon's gravity causes tides."}]})
        self.settings = MergerSettings(topic_namespace=namespace,
                                       inference_servers=scripted_servers("judge-model", "think-model"),
                                       model_assignments='{"judge": ["judge-model"], "thinking": ["think-model"]}')
        inference, self.budgets = _with_budget(self.settings, self.llm, timed, namespace)
        self.bus = Bus(self.settings)
        merger_app(self.settings, bus=self.bus, inference=inference, redis=timed, manage_broker=False, sweeper=False)
        self.rid = f"r-{namespace}"
        self.answers: list[tuple[Answer, str | None]] = []
        self.ingest: list[IngestEvent] = []
        self.bus.broker.subscriber(self.bus.topics.ingest)(lambda m: self.ingest.append(IngestEvent.model_validate(m)))

    def watch(self, redis: Redis) -> None:
        @self.bus.broker.subscriber(self.bus.topics.answers)
        async def on_answer(message: dict[str, Any]) -> None:
            self.answers.append((Answer.model_validate(message), await redis.get(self.budgets.key(self.rid))))

    def messages(self) -> list[Plan | TaskResult]:
        fields: dict[str, Any] = {"response_id": self.rid, "tenant_id": "t", "deadline_at": deadline_in(60)}
        tasks = [PlannedTask(task_id="t1", category="general", instruction="do general"),
                 PlannedTask(task_id="t2", category="science", instruction="do science"),
                 PlannedTask(task_id="g1", kind="graph", category="knowledge_graph", instruction="look up")]
        usage = Usage(prompt_tokens=5, completion_tokens=2)
        return [Plan(**fields, mode="moe-orchestrator", question="What about tides?", tasks=tasks,
                     planner_model="planner-model", usage=Usage(prompt_tokens=11, completion_tokens=3)),
                TaskResult(**fields, task_id="t1", category="general", content="The Moon pulls.", confidence="medium",
                           model="expert-model", server="s", usage=usage),
                TaskResult(**fields, task_id="t2", category="science", content="Gravity.", confidence="high",
                           model="expert-model", server="s", usage=usage),
                TaskResult(**fields, task_id="g1", kind="graph", category="knowledge_graph",
                           content="Moon CAUSES Tide", usage=usage)]

    async def send(self, *messages: Plan | TaskResult) -> None:
        for message in messages:
            await self.bus.publish(message, self.bus.topics.plans if isinstance(message, Plan)
                                   else self.bus.topics.results)


async def test_a_full_request_in_eight_merger_round_trips_and_a_redelivery_in_one(
        timed: Redis, redis: Redis, namespace: str) -> None:
    h = MergerHarness(namespace, timed)
    h.watch(redis)
    await h.budgets.open(h.rid, BUDGET, 60)
    await redis.script_load(TAKE)
    messages = h.messages()
    async with TestKafkaBroker(h.bus.broker):
        with own_ops("redis") as first:
            await h.send(*messages)
        with own_ops("redis") as again:
            await h.send(messages[-1])  # the last result redelivered: the stored answer and ingest event again
    # 4 x (store + read back + mark: one script each), the take of the thinking step, the judge's take with the
    # thinking's give-back, the answer with its ingest event and the judge's give-back; the claim
    assert first == {"eval": 4, "pipeline": 2, "evalsha": 1, "set": 1}
    assert again == {"eval": 1}
    [(answer, left), (repeated, left_again)] = h.answers
    assert answer.content == "The Moon's gravity causes tides." and answer.reasoning == "Both say the Moon."
    stamps = {"started_at", "versions", "trace", "cost"}  # stamped as each publish goes out, not stored
    assert repeated.model_dump(exclude=stamps) == answer.model_dump(exclude=stamps)
    assert len(h.llm.state.scripted.get_calls()) == 2  # thinking and judge, once
    assert len(h.ingest) == 2 and h.ingest[0].model_dump(exclude=stamps) == h.ingest[1].model_dump(exclude=stamps)
    assert await redis.get(f"merger:{namespace}:{h.rid}:ingest") is not None  # stored with the answer
    models = answer.usage.total_tokens - (11 + 3) - 3 * (5 + 2)  # what the thinking and judge calls used
    assert int(left or 0) == int(left_again or 0) == BUDGET - models  # both give-backs in before the publish


async def test_a_cancel_marked_by_another_process_still_stops_the_merger(
        timed: Redis, redis: Redis, namespace: str) -> None:
    h = MergerHarness(namespace, timed)
    h.watch(redis)
    await redis.set(f"cancel:{namespace}:{h.rid}", "1", ex=60)  # this process never saw the Cancel message
    async with TestKafkaBroker(h.bus.broker):
        with own_ops("redis") as ops:
            await h.send(*h.messages())
    [(answer, _)] = h.answers
    assert answer.error is not None and answer.error.code == "cancelled"
    assert h.llm.state.scripted.get_calls() == []
    assert ops == {"eval": 4, "pipeline": 1, "set": 1}  # the mark came with the last snapshot: no check of its own


async def test_deferred_give_backs_go_out_with_the_next_take_or_when_the_scope_ends(
        timed: Redis, redis: Redis, namespace: str) -> None:
    budgets = TokenBudgets(timed, namespace)
    rid = f"b-{namespace}"
    await budgets.open(rid, 1000, 60)
    assert await budgets.take(rid, 100, 100) == 100
    with pytest.raises(RuntimeError):
        async with redis_batch.deferring(timed):
            with own_ops("redis") as deferred:
                await budgets.give_back(rid, 150)
            assert deferred == {} and await redis.get(budgets.key(rid)) == "800"  # not sent yet
            with own_ops("redis") as sent:
                assert await budgets.take(rid, 50, 10) == 10  # one round trip: the give-back, then the take
            assert sent == {"pipeline": 1} and await redis.get(budgets.key(rid)) == "890"
            await budgets.give_back(rid, 10)
            raise RuntimeError("the handler failed")
    assert await redis.get(budgets.key(rid)) == "900"  # what was still deferred went out as the scope ended
    await budgets.give_back(rid, 5)  # outside a scope: at once, as before
    assert await redis.get(budgets.key(rid)) == "905"
