"""On the real broker, with a scripted model that produces tokens slowly: the merger's judge tokens reach
the deltas topic while the judge is still generating, and a Cancel stops a request's model calls — in the
merger mid-stream and in the expert-worker mid-call — with no further call of that request."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from expert_worker.app import create_app as expert_app
from expert_worker.settings import ExpertSettings
from merger.app import create_app as merger_app
from merger.settings import MergerSettings
from moe_core.contracts import (
    Cancel,
    ChatMessage,
    Envelope,
    ExpertTask,
    Plan,
    PlannedTask,
    TaskResult,
    Topics,
    deadline_in,
)
from moe_core.runtime.bus import Bus
from moe_core.runtime.kafka_clients import client_kwargs
from moe_core.runtime.stores import redis_client
from tests.conftest import Scripted, scripted_env
from tests.support.topic_reader import TopicReader

pytestmark = pytest.mark.infra
SLOW_ANSWER = " ".join(f"word{i}" for i in range(30)) + "."


@asynccontextmanager
async def running(factory: Callable[..., FastAPI], settings: Any) -> AsyncIterator[None]:
    app = factory(settings)
    async with app.router.lifespan_context(app):
        yield


async def _publish(bootstrap: str, topic: str, *messages: Envelope) -> None:
    producer = AIOKafkaProducer(**client_kwargs(bootstrap=bootstrap), acks="all")
    await producer.start()
    try:
        for message in messages:
            await producer.send_and_wait(topic, message.model_dump_json().encode(), key=message.response_id.encode())
    finally:
        await producer.stop()


async def _until(check: Callable[[], bool], timeout_s: float = 20) -> None:
    """Wait for something only the scripted server's call log shows (it has no event to await)."""
    end = asyncio.get_running_loop().time() + timeout_s
    while not check():
        assert asyncio.get_running_loop().time() < end, "condition not reached"
        await asyncio.sleep(0.02)


def _two_results(rid: str, deadline: Any) -> tuple[Plan, list[TaskResult]]:
    plan = Plan(response_id=rid, tenant_id="t", deadline_at=deadline, mode="moe-orchestrator", question=f"Tides? {rid}",
                tasks=[PlannedTask(task_id="t1", category="general", instruction="a"),
                       PlannedTask(task_id="t2", category="science", instruction="b")])
    results = [TaskResult(**plan.child_fields(), task_id=tid, category=cat, content=f"{cat} says moon",
                          model="expert-model", server="scripted")
               for tid, cat in (("t1", "general"), ("t2", "science"))]
    return plan, results


@pytest.fixture
def env(scripted: Scripted, monkeypatch: pytest.MonkeyPatch) -> Scripted:
    for key, value in scripted_env(scripted.url).items():
        monkeypatch.setenv(key, value)
    return scripted


async def test_judge_tokens_stream_while_the_judge_is_still_generating(env: Scripted, infra: dict[str, str],
                                                                       namespace: str) -> None:
    rid = f"r{uuid.uuid4().hex[:8]}"
    env.script([{"model": "judge-model", "system_contains": "think briefly", "reply": "Both agree."},
                {"model": "judge-model", "contains": rid, "reply": SLOW_ANSWER, "token_delay_ms": 60}])
    topics = Topics.for_namespace(namespace)
    settings = MergerSettings(topic_namespace=namespace, kafka_bootstrap=infra["kafka"], redis_url=infra["redis"],
                              consumer_workers=1)
    plan, results = _two_results(rid, deadline_in(60))
    async with running(merger_app, settings), TopicReader(infra["kafka"], topics.deltas, topics.answers) as reader:
        await _publish(infra["kafka"], topics.plans, plan)
        await _publish(infra["kafka"], topics.results, *results)
        await reader.wait(topics.deltas, lambda d: d["channel"] == "content")
        judge = [c for c in env.calls("judge-model") if rid in str(c["messages"]) and c["reply"] == SLOW_ANSWER]
        assert judge and not judge[0]["completed"], "the first content delta arrived only after the judge finished"
        [answer] = await reader.wait(topics.answers)
    deltas = reader.on(topics.deltas)
    assert "".join(d["content"] for d in deltas if d["channel"] == "content") == answer["content"] == SLOW_ANSWER
    assert "".join(d["content"] for d in deltas if d["channel"] == "reasoning") == answer["reasoning"] == "Both agree."
    assert [d["seq"] for d in deltas] == list(range(len(deltas)))
    assert env.calls("judge-model")[-1]["completed"]


async def test_cancel_stops_the_judge_mid_stream(env: Scripted, infra: dict[str, str], namespace: str) -> None:
    rid = f"r{uuid.uuid4().hex[:8]}"
    env.script([{"model": "judge-model", "contains": rid, "reply": SLOW_ANSWER, "token_delay_ms": 150}])
    topics = Topics.for_namespace(namespace)
    settings = MergerSettings(topic_namespace=namespace, kafka_bootstrap=infra["kafka"], redis_url=infra["redis"],
                              consumer_workers=1, thinking=False)
    plan, results = _two_results(rid, deadline_in(60))
    async with running(merger_app, settings), TopicReader(infra["kafka"], topics.deltas, topics.answers) as reader:
        await _publish(infra["kafka"], topics.plans, plan)
        await _publish(infra["kafka"], topics.results, *results)
        await reader.wait(topics.deltas, lambda d: d["channel"] == "content")
        await _publish(infra["kafka"], topics.cancel, Cancel(**plan.child_fields()))
        [answer] = await reader.wait(topics.answers)
        await _until(lambda: env.calls("judge-model")[0]["cancelled"])
    assert answer["error"]["code"] == "cancelled" and answer["response_id"] == rid
    [judge] = env.calls("judge-model")  # one call only: nothing was retried or started after the Cancel
    assert judge["cancelled"] and not judge["completed"]
    streamed = "".join(d["content"] for d in reader.on(topics.deltas))
    assert streamed and SLOW_ANSWER.startswith(streamed) and streamed != SLOW_ANSWER


async def test_cancel_stops_an_expert_call_and_refuses_the_requests_next_tasks(
        env: Scripted, infra: dict[str, str], namespace: str) -> None:
    rid = f"r{uuid.uuid4().hex[:8]}"
    env.script([{"model": "expert-model", "contains": rid, "reply": "late\nCONFIDENCE: high", "delay_ms": 20_000}])
    topics = Topics.for_namespace(namespace)
    settings = ExpertSettings(topic_namespace=namespace, kafka_bootstrap=infra["kafka"], redis_url=infra["redis"],
                              consumer_workers=1)
    first, second = (ExpertTask(response_id=rid, tenant_id="t", deadline_at=deadline_in(60), task_id=tid,
                                category="general", instruction=f"answer {rid}", question=f"q {rid}")
                     for tid in ("t1", "t2"))
    async with running(expert_app, settings), TopicReader(infra["kafka"], topics.results) as reader:
        await _publish(infra["kafka"], topics.tasks_expert, first)
        await _until(lambda: len(env.calls("expert-model")) == 1)  # the slow call is in flight
        await _publish(infra["kafka"], topics.cancel, Cancel(**first.child_fields()))
        [stopped] = await reader.wait(topics.results)
        await _publish(infra["kafka"], topics.tasks_expert, second)
        refused = await reader.wait(topics.results, count=2)
    assert (stopped["task_id"], stopped["error"]) == ("t1", "cancelled")
    assert (refused[1]["task_id"], refused[1]["error"]) == ("t2", "cancelled")
    assert len(env.calls("expert-model")) == 1  # no call for t2, no retry of t1


async def test_a_plans_two_experts_call_their_models_at_once(env: Scripted, infra: dict[str, str],
                                                              namespace: str) -> None:
    """Both tasks carry the request's key, so they share a partition: the expert-worker starts the second one's
    model call while the first one's is still running (before, the second waited for the first), and a Cancel then
    stops both."""
    rid = f"r{uuid.uuid4().hex[:8]}"
    env.script([{"model": "expert-model", "contains": rid, "reply": "late\nCONFIDENCE: high", "delay_ms": 20_000}])
    topics = Topics.for_namespace(namespace)
    settings = ExpertSettings(topic_namespace=namespace, kafka_bootstrap=infra["kafka"], redis_url=infra["redis"],
                              consumer_workers=1)
    tasks = [ExpertTask(response_id=rid, tenant_id="t", deadline_at=deadline_in(60), task_id=tid, category="general",
                        instruction=f"answer {tid} of {rid}", question=f"q {rid}") for tid in ("t1", "t2")]
    async with running(expert_app, settings), TopicReader(infra["kafka"], topics.results) as reader:
        planner = Bus(settings)  # published as the planner publishes them: the Bus stamps the task-id header
        await planner.broker.connect()
        try:
            await planner.publish_all([(task, topics.tasks_expert) for task in tasks])
        finally:
            await planner.close()
        await _until(lambda: len(env.calls("expert-model")) == 2)  # within 20 s: the first call is still running
        assert not any(call["completed"] for call in env.calls("expert-model"))
        await _publish(infra["kafka"], topics.cancel, Cancel(**tasks[0].child_fields()))
        stopped = await reader.wait(topics.results, count=2)
    assert sorted((r["task_id"], r["error"]) for r in stopped) == [("t1", "cancelled"), ("t2", "cancelled")]


PATH = {"type": "object", "properties": {"path": {"type": "string"}}}
TOOLS = [{"type": "function", "function": {"name": "read_file", "description": "Read a file", "parameters": PATH}}]


def _direct(rid: str, deadline: Any, stream_answer: bool, tools: list[dict[str, Any]] | None = None
            ) -> tuple[Plan, ExpertTask]:
    """A trivial question's plan (the router's, one expert: Plan.is_direct) and its one task."""
    question = f"Name a colour {rid}"
    plan = Plan(response_id=rid, tenant_id="t", deadline_at=deadline, mode="moe-orchestrator", question=question,
                tasks=[PlannedTask(task_id="t1", category="general", instruction=question)], source="router",
                complexity="trivial")
    task = ExpertTask(**plan.child_fields(), task_id="t1", category="general", instruction=question,
                      question=question, direct=True, stream_answer=stream_answer, tools=tools or [],
                      history=[ChatMessage(role="user", content=question)] if tools else [])
    return plan, task


async def test_a_trivial_questions_answer_streams_from_its_expert_while_the_model_writes_it(
        env: Scripted, infra: dict[str, str], namespace: str) -> None:
    rid = f"r{uuid.uuid4().hex[:8]}"
    env.script([{"model": "expert-model", "contains": rid, "reply": f"  {SLOW_ANSWER}\n", "token_delay_ms": 60}])
    topics = Topics.for_namespace(namespace)
    expert = ExpertSettings(topic_namespace=namespace, kafka_bootstrap=infra["kafka"], redis_url=infra["redis"],
                            consumer_workers=1)
    merger = MergerSettings(topic_namespace=namespace, kafka_bootstrap=infra["kafka"], redis_url=infra["redis"],
                            consumer_workers=1)
    plan, task = _direct(rid, deadline_in(60), stream_answer=True)
    async with running(expert_app, expert), running(merger_app, merger), \
            TopicReader(infra["kafka"], topics.deltas, topics.answers) as reader:
        await _publish(infra["kafka"], topics.plans, plan)
        await _publish(infra["kafka"], topics.tasks_expert, task)
        await reader.wait(topics.deltas, lambda d: d["channel"] == "content")
        [call] = [c for c in env.calls("expert-model") if rid in str(c["messages"])]
        assert call["stream"] is True
        assert not call["completed"], "the first piece of the answer arrived only after the model finished"
        [answer] = await reader.wait(topics.answers)
    deltas = reader.on(topics.deltas)
    assert {d["stage"] for d in deltas} == {"expert-worker"}  # the fast path: the merger streams nothing more
    assert "".join(d["content"] for d in deltas) == answer["content"] == SLOW_ANSWER  # trimmed as the answer is
    assert [d["seq"] for d in deltas] == list(range(len(deltas))) and len(deltas) > 1
    assert answer["experts_used"] and answer["usage"]["completion_tokens"] > 0


async def test_an_expert_task_not_marked_for_streaming_streams_nothing(
        env: Scripted, infra: dict[str, str], namespace: str) -> None:
    rid = f"r{uuid.uuid4().hex[:8]}"
    env.script([{"model": "expert-model", "contains": rid, "reply": SLOW_ANSWER}])
    topics = Topics.for_namespace(namespace)
    settings = ExpertSettings(topic_namespace=namespace, kafka_bootstrap=infra["kafka"], redis_url=infra["redis"],
                              consumer_workers=1)
    _, task = _direct(rid, deadline_in(60), stream_answer=False)
    async with running(expert_app, settings), TopicReader(infra["kafka"], topics.deltas, topics.results) as reader:
        await _publish(infra["kafka"], topics.tasks_expert, task)
        [result] = await reader.wait(topics.results)
    assert result["content"] == SLOW_ANSWER
    [call] = [c for c in env.calls("expert-model") if rid in str(c["messages"])]
    assert call["stream"] is False
    assert reader.on(topics.deltas) == []


async def test_an_agents_streamed_answer_and_its_tool_call(env: Scripted, infra: dict[str, str],
                                                            namespace: str) -> None:
    """A direct task with tools (an agent's turn) streams its text like any other; a reply that is a tool call
    streams no text and its call reaches the Answer whole, assembled from the model's streamed fragments."""
    said, called = f"r{uuid.uuid4().hex[:8]}", f"r{uuid.uuid4().hex[:8]}"
    env.script([{"model": "expert-model", "contains": said, "reply": SLOW_ANSWER, "token_delay_ms": 30},
                {"model": "expert-model", "contains": called,
                 "tool_calls": [{"name": "read_file", "arguments": {"path": "README.md"}}]}])
    topics = Topics.for_namespace(namespace)
    expert = ExpertSettings(topic_namespace=namespace, kafka_bootstrap=infra["kafka"], redis_url=infra["redis"],
                            consumer_workers=1)
    merger = MergerSettings(topic_namespace=namespace, kafka_bootstrap=infra["kafka"], redis_url=infra["redis"],
                            consumer_workers=1)
    async with running(expert_app, expert), running(merger_app, merger), \
            TopicReader(infra["kafka"], topics.deltas, topics.answers) as reader:
        for rid in (said, called):
            plan, task = _direct(rid, deadline_in(60), stream_answer=True, tools=TOOLS)
            await _publish(infra["kafka"], topics.plans, plan)
            await _publish(infra["kafka"], topics.tasks_expert, task)
        answers = {a["response_id"]: a for a in await reader.wait(topics.answers, count=2)}
    calls = {rid: next(c for c in env.calls("expert-model") if rid in str(c["messages"])) for rid in (said, called)}
    assert all(c["stream"] is True and c["body"]["tools"] for c in calls.values())
    text = [d for d in reader.on(topics.deltas) if d["response_id"] == said]
    assert "".join(d["content"] for d in text) == answers[said]["content"] == SLOW_ANSWER and len(text) > 1
    assert not answers[said]["tool_calls"]
    assert [d for d in reader.on(topics.deltas) if d["response_id"] == called] == []
    [call] = answers[called]["tool_calls"]
    assert (call["id"], call["function"]["name"], json.loads(call["function"]["arguments"])) == (
        "call_0", "read_file", {"path": "README.md"})


async def test_a_trivial_request_cancelled_before_its_result_is_answered_cancelled(
        env: Scripted, infra: dict[str, str], namespace: str) -> None:
    """The fast path writes its answer without a claim (merger.compose.Composer.settle): the Cancel mark read with
    the state still makes it the cancelled answer, not the expert's."""
    rid = f"r{uuid.uuid4().hex[:8]}"
    topics = Topics.for_namespace(namespace)
    merger = MergerSettings(topic_namespace=namespace, kafka_bootstrap=infra["kafka"], redis_url=infra["redis"],
                            consumer_workers=1)
    plan, task = _direct(rid, deadline_in(60), stream_answer=False)
    result = TaskResult(**task.child_fields(), task_id="t1", category="general", content="Blue.",
                        model="expert-model", server="scripted")
    redis = redis_client(infra["redis"])
    try:
        async with running(merger_app, merger), TopicReader(infra["kafka"], topics.answers) as reader:
            await _publish(infra["kafka"], topics.plans, plan)
            await _publish(infra["kafka"], topics.cancel, Cancel(**plan.child_fields()))
            for _ in range(1000):  # the merger's own consumer of `cancel` marks it
                if await redis.exists(f"cancel:{namespace}:{rid}"):
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("the Cancel was never marked")
            await _publish(infra["kafka"], topics.results, result)
            [answer] = await reader.wait(topics.answers)
    finally:
        await redis.aclose()
    assert answer["response_id"] == rid and answer["error"]["code"] == "cancelled", answer
    assert "Blue." not in (answer.get("content") or "")
    assert not env.calls("judge-model")
