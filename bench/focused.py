"""Focused, load-independent measurements of issue 13's fixes (counts, not timings), each runnable on a
busy machine against the local Kafka and Redis (addresses and credentials from fleetlib, bench.infra; started
if they are not running):

  python -m bench.focused commits [INTERVAL_MS ...]  broker commits per record (AIOKafkaConsumer.commit counted)
  python -m bench.focused merger                     Redis round trips of the merger per full request
  python -m bench.focused tokens                     prompt tokens of one full request (scripted-server rule)

For a before/after, run the same command with an older tree first on PYTHONPATH, e.g.
`git archive <rev> services | tar -x -C /tmp/before` and
`PYTHONPATH=/tmp/before/services/merger:. python -m bench.focused merger`.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import time
from typing import Any

from bench.infra import connect

N_RECORDS = 400


async def commits(intervals: list[int]) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient

    from moe_core.runtime.bus import Bus
    from moe_core.runtime.kafka_clients import client_kwargs
    from moe_core.runtime.offset_commits import OffsetCommits
    # (not type-checked with bench)
    helpers = importlib.import_module("tests.broker.moe_core.runtime.test_batched_commits")
    _consume, _request, _settings = helpers._consume, helpers._request, helpers._settings
    new_namespace = importlib.import_module("tests.support.namespaces").new_namespace

    calls = [0]
    original = AIOKafkaConsumer.commit

    async def counting(self: AIOKafkaConsumer, offsets: Any = None) -> None:
        calls[0] += 1
        await original(self, offsets)

    AIOKafkaConsumer.commit = counting
    eps = connect(["kafka"])  # the bench's clients are the broker's admin (SASL/SCRAM): MOE_KAFKA_* set
    for interval in intervals:
        settings = _settings(eps["kafka"], new_namespace("t"), interval)
        bus = Bus(settings)
        await bus.ensure_topics()
        done, seen = asyncio.Event(), [0]
        consumer = await _consume(settings, _counter(done, seen), OffsetCommits(interval))
        await asyncio.sleep(3)  # joined and positioned
        calls[0] = 0
        producer = AIOKafkaProducer(**client_kwargs(settings))
        await producer.start()
        cpu = time.process_time()
        for i in range(N_RECORDS):  # a steady stream, one record every 5 ms
            await producer.send_and_wait(bus.topics.requests, _request(f"m-{i}"), key=str(i).encode())
            await asyncio.sleep(0.005)
        await asyncio.wait_for(done.wait(), 120)
        await asyncio.sleep(0.5)
        cpu = time.process_time() - cpu
        await producer.stop()
        await consumer.broker.stop()
        admin = AIOKafkaAdminClient(**client_kwargs(settings))
        await admin.start()
        try:  # this measurement's own topics
            await admin.delete_topics([t for t in bus.topics.all() if t.startswith(settings.topic_namespace)])
        finally:
            await admin.close()
        print(f"interval {interval} ms: {N_RECORDS} records, {calls[0]} broker commits "
              f"({calls[0] / N_RECORDS:.2f} per record), {cpu * 1000 / N_RECORDS:.2f} ms CPU per record in-process")


def _counter(done: asyncio.Event, seen: list[int]) -> Any:
    async def handle(_: Any) -> None:
        seen[0] += 1
        if seen[0] == N_RECORDS:
            done.set()

    return handle


async def merger_round_trips() -> None:
    from faststream.kafka import TestKafkaBroker

    from moe_core.runtime.stores import redis_client
    new_namespace = importlib.import_module("tests.support.namespaces").new_namespace
    Harness = importlib.import_module("tests.unit.merger.test_merger_handler").Harness
    round_trips = importlib.import_module("tests.support.store_calls").redis_round_trips  # as the bench tests count
    redis = redis_client(connect(["redis"])["redis"])  # with the password of .data/secrets.json, if any
    counts = []
    for _ in range(3):
        namespace = new_namespace("t")
        h = Harness(namespace, redis, [{"model": "think-model", "reply": "Both say the Moon."},
                                       {"model": "judge-model", "reply": "The Moon causes tides."}])
        async with TestKafkaBroker(h.bus.broker):
            before = round_trips()
            await h.send(h.plan(("t1", "expert", "general"), ("t2", "expert", "science"),
                                ("g1", "graph", "knowledge_graph")),
                         h.result("t1", "general", "The Moon pulls."), h.result("t2", "science", "Gravity.", "high"),
                         h.result("g1", "knowledge_graph", "Moon CAUSES Tide", kind="graph"))
            counts.append(round_trips() - before)
        assert len(h.out["answers"]) == 1
        await redis.delete(*[k async for k in redis.scan_iter(f"*{namespace}*")] or ["-"])
    await redis.aclose()
    print(f"merger: Redis round trips per full request (plan + 3 results, thinking + judge): {counts}")


def tokens() -> None:
    from bench.scenarios import PLAN, SCRIPT, full_question
    from expert_worker.core import expert_messages
    from merger import synthesis
    from moe_core.contracts import (
        EXPERT_CATEGORIES,
        ChatMessage,
        ChatRequest,
        FewShot,
        Plan,
        PlannedTask,
        TaskResult,
        deadline_in,
    )
    from moe_core.llm.modes import get_mode
    from planner import core, research_tasks
    from planner.app import task_message
    from planner.settings import PlannerSettings
    scripted = importlib.import_module("tests.support.scripted_core")  # the scripted server's token rule
    completion_tokens, prompt_tokens = scripted.completion_tokens, scripted.prompt_tokens

    settings = PlannerSettings()
    # research offered as the planner offers it (an older tree, for a before count, offered it to every question)
    offer = getattr(research_tasks, "offered", lambda _question, s: s.planner_research_tasks)
    question = full_question(3)
    fields: dict[str, Any] = {"response_id": "r", "tenant_id": "t", "deadline_at": deadline_in(60),
                              "mode": "moe-orchestrator"}
    request = ChatRequest(**fields, messages=[ChatMessage(role="user", content=question)])
    user = [{"role": "user", "content": question}]
    direct = prompt_tokens(user) + completion_tokens(SCRIPT["replies"]["expert-model"])
    print(f"direct call: {direct} tokens (the question: {prompt_tokens(user)})")
    shots = [FewShot(question=full_question(i), answer="One merged answer drawn from both experts. " * 3,
                     distance=0.3) for i in (10, 20)]
    for label, few in (("empty cache", []), ("2 few-shot examples (warm cache)", shots)):
        calls: list[tuple[str, list[dict[str, Any]], str]] = [(
            "planner", core.planner_messages(question, list(EXPERT_CATEGORIES), settings.planner_max_tasks, None,
                                             offer(question, settings)),  # as the planner does
            SCRIPT["replies"]["planner-model"])]
        tasks = [PlannedTask(task_id=f"t{i}", category=t["category"], instruction=t["instruction"])
                 for i, t in enumerate(PLAN["tasks"], 1)]
        plan = Plan(**fields, question=question, tasks=tasks, few_shot=few, source="llm")
        results = []
        for task in tasks:
            message = task_message(request, plan, task, [])
            calls.append((f"expert {task.category}", expert_messages(message),  # type: ignore[arg-type]
                          SCRIPT["replies"]["expert-model"]))
            results.append(TaskResult(**fields, task_id=task.task_id, category=task.category, confidence="high",
                                      content="A short, precise expert answer to the task."))
        good = synthesis.dedup(results)
        calls.append(("thinking", synthesis.thinking_messages(plan, good), "ok"))
        calls.append(("judge", synthesis.judge_messages(plan, good, "ok", get_mode(plan.mode)),
                      SCRIPT["replies"]["judge-model"]))
        prompt = sum(prompt_tokens(m) for _, m, _ in calls)
        completion = sum(completion_tokens(r) for _, _, r in calls)
        each = ", ".join(f"{name} {prompt_tokens(m)}" for name, m, _ in calls)
        print(f"{label}: prompt {prompt} ({each}); completion {completion}; "
              f"total {prompt + completion} = {(prompt + completion) / direct:.1f}x a direct call")


def main(argv: list[str]) -> None:
    what = argv[0] if argv else "tokens"
    if what == "commits":
        asyncio.run(commits([int(a) for a in argv[1:]] or [0, 200]))
    elif what == "merger":
        asyncio.run(merger_round_trips())
    elif what == "tokens":
        tokens()
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
