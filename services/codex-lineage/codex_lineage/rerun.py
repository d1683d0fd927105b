"""`replay rerun RESPONSE_ID`: what would the fleet answer today? The recorded ChatRequest is published again
under a new response_id marked `replay_of` (the planner neither reads nor fills its caches for it, the
merger learns nothing from it), and the differences are printed stage by stage: the plan, each task (the model
that answered it, its output), the experts and the answer, and which stages ran with another configuration or
other prompt templates than recorded. (`--as-recorded`: codex_lineage.as_recorded.)"""

from __future__ import annotations

import asyncio
import difflib
import uuid
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer

from codex_lineage.digests import digest
from codex_lineage.reader import partitions, read_records
from codex_lineage.settings import LineageSettings
from moe_core.audit.records import AuditRecord
from moe_core.contracts import Answer, ChatRequest, Plan, TaskResult, Topics, utcnow
from moe_core.runtime.bus import Bus
from moe_core.runtime.kafka_clients import client_kwargs


def first(records: list[AuditRecord], message_type: str) -> dict[str, Any] | None:
    return next((r.payload for r in records if r.message_type == message_type), None)


def describe_plan(plan: dict[str, Any] | None) -> list[str]:
    if plan is None:
        return ["(no plan: answered without planning, e.g. from a cache)"]
    return [f"{t.get('kind')}:{t.get('category')}" + (f" {t.get('tool')}" if t.get("tool") else "")
            for t in plan.get("tasks") or []]


def task_runs(results: list[dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    """Each task (kind:category) with the models that answered it and digests of their outputs."""
    out: dict[str, list[tuple[str, str]]] = {}
    for r in results:
        out.setdefault(f"{r.get('kind')}:{r.get('category')}", []).append(
            (str(r.get("model") or "-"), digest(r.get("content") or r.get("data") or "")))
    return {k: sorted(v) for k, v in out.items()}


def task_lines(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[str]:
    """Stage by stage: per task, whether the model and the output are the same today."""
    old, new = task_runs(before), task_runs(after)
    lines = []
    for task in sorted(set(old) | set(new)):
        a, b = old.get(task, []), new.get(task, [])
        models_a, models_b = [m for m, _ in a], [m for m, _ in b]
        if a == b:
            lines.append(f"task:    {task}: same ({', '.join(models_a)})")
        elif not a or not b:
            lines.append(f"task:    {task}: {'only today' if not a else 'not run today'}")
        else:
            model = "same model" if models_a == models_b else f"model {models_a} -> {models_b}"
            lines.append(f"task:    {task}: {model}, output differs")
    return lines


def version_lines(before: dict[str, Any] | None, after: dict[str, Any] | None, stage: str) -> list[str]:
    """Whether `stage` ran today with the recorded configuration and prompt templates (digests compared)."""
    a, b = (before or {}).get("versions") or {}, (after or {}).get("versions") or {}
    if not a or not b:
        return [] if not a and not b else [f"{stage + ':':<9}versions {'not recorded then' if not a else 'not today'}"]
    changed = ["config"] if a.get("config") != b.get("config") else []
    pa, pb = a.get("prompts") or {}, b.get("prompts") or {}
    changed += [f"prompt {name}" for name in sorted(set(pa) | set(pb)) if pa.get(name) != pb.get(name)]
    qa, qb = a.get("policies") or {}, b.get("policies") or {}
    changed += [f"policy {name}" for name in sorted(set(qa) | set(qb)) if qa.get(name) != qb.get(name)]
    return [f"{stage + ':':<9}versions " + ("same" if not changed else "changed: " + ", ".join(changed))]


def differences(old: list[AuditRecord], plan: dict[str, Any] | None, answer: dict[str, Any],
                results: list[dict[str, Any]] | None = None) -> list[str]:
    old_plan, old_answer = first(old, "Plan"), first(old, "Answer") or {}
    lines = ["plan:    " + ("same" if describe_plan(old_plan) == describe_plan(plan) else
                            f"{describe_plan(old_plan)} -> {describe_plan(plan)}")]
    if results is not None:
        lines += task_lines([r.payload for r in old if r.message_type == "TaskResult"], results)
    before, after = old_answer.get("experts_used") or [], answer.get("experts_used") or []
    lines.append("experts: " + ("same" if before == after else f"{before} -> {after}"))
    lines += version_lines(old_plan, plan, "plan") + version_lines(old_answer, answer, "answer")
    a, b = str(old_answer.get("content", "")), str(answer.get("content", ""))
    if a == b:
        lines.append("answer:  same")
    else:
        lines.append("answer:")
        lines += ["  " + d for d in difflib.unified_diff(a.splitlines(), b.splitlines(), "recorded", "today",
                                                         lineterm="", n=1)]
    return lines


async def rerun(settings: LineageSettings, response_id: str, timeout_s: float) -> int:
    bus = Bus(settings)
    old = [r async for r in read_records(settings.kafka_bootstrap, bus.topics, response_id=response_id)]
    recorded = first(old, "ChatRequest")
    if recorded is None:
        print(f"no recorded request {response_id} on {bus.topics.requests} (retention?)")
        return 2
    request = replay_request(recorded, response_id, timeout_s)
    plan, results, answer = await send(settings, request, timeout_s)
    print(f"replayed {response_id} as {request.response_id}")
    for line in differences(old, plan, answer, results):
        print(line)
    return 0


def replay_request(recorded: dict[str, Any], response_id: str, timeout_s: float, **update: Any) -> ChatRequest:
    """The recorded ChatRequest under a new response_id marked `replay_of` (nothing is learned from it), as a
    non-streaming request due within `timeout_s`; `update`: further fields (`as_recorded`)."""
    return ChatRequest.model_validate(recorded).model_copy(update={
        "response_id": f"replay-{uuid.uuid4().hex[:24]}", "replay_of": response_id, "created_at": utcnow(),
        "started_at": None, "versions": None, "model_outputs": None, "as_recorded": None,
        "as_recorded_results": None, "recorded_few_shot": None, "recorded_patterns": None,
        "deadline_at": utcnow() + timedelta(seconds=timeout_s), "live": False, "stream": False, **update})


async def send(settings: LineageSettings, request: ChatRequest,
               timeout_s: float) -> tuple[dict[str, Any] | None, list[dict[str, Any]], dict[str, Any]]:
    """Publish the request and collect its plan, task results and answer from the topics (TimeoutError after
    timeout_s)."""
    bus = Bus(settings)
    consumer = AIOKafkaConsumer(**client_kwargs(settings), group_id=None,
                                auto_offset_reset="latest", enable_auto_commit=False, fetch_max_wait_ms=100)
    parts = await partitions(settings.kafka_bootstrap, [bus.topics.plans, bus.topics.results, bus.topics.answers])
    await consumer.start()
    try:
        consumer.assign(parts)
        await consumer.seek_to_end(*parts)
        for tp in parts:
            await consumer.position(tp)  # positioned before the request goes out: nothing is missed
        await bus.broker.start()
        try:
            await bus.publish(request, bus.topics.requests)
        finally:
            await bus.close()
        return await asyncio.wait_for(_collect(consumer, request.response_id, bus.topics), timeout_s)
    finally:
        await consumer.stop()


async def _behind(consumer: AIOKafkaConsumer, ends: dict[Any, int]) -> bool:
    """Whether the consumer has not yet read some partition up to its given end offset."""
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False


async def _collect(consumer: AIOKafkaConsumer, response_id: str,
                   topics: Topics) -> tuple[dict[str, Any] | None, list[dict[str, Any]], dict[str, Any]]:
    """The replay's plan, task results and answer. Partitions are fetched independently, so the answer can be read
    before results published earlier: once it is seen, the other partitions are read up to the offsets they had
    then (everything published before the answer), and only then is the collection complete."""
    plan: dict[str, Any] | None = None
    results: list[dict[str, Any]] = []
    answer: dict[str, Any] | None = None
    ends: dict[Any, int] = {}
    key = response_id.encode()
    while answer is None or await _behind(consumer, ends):
        batch = await consumer.getmany(timeout_ms=500)
        for messages in batch.values():
            for msg in messages:
                if msg.key != key or msg.value is None:
                    continue
                if msg.topic == topics.plans:
                    plan = Plan.model_validate_json(msg.value).model_dump(mode="json")
                elif msg.topic == topics.results:
                    results.append(TaskResult.model_validate_json(msg.value).model_dump(mode="json"))
                elif answer is None:
                    answer = Answer.model_validate_json(msg.value).model_dump(mode="json")
                    others = [tp for tp in consumer.assignment() if tp.topic != topics.answers]
                    ends = dict(await consumer.end_offsets(others))
    return plan, results, answer
