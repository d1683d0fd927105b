"""The merger reads a request's state in one Redis round trip (merger.reads), and a plan or result is
stored and read back in one: a two-task request is handled in one round trip per message until it is
composed (it was five: the write, then answer, draft, plan and results). Against the real Redis."""

from __future__ import annotations

from typing import Any

import pytest

from merger.state import MergerState
from moe_core.contracts import Answer, Draft, Plan, PlannedTask, TaskResult, deadline_in
from moe_core.runtime.stores import redis_client
from tests.support.store_calls import own_ops

pytestmark = pytest.mark.infra  # real Redis (and Kafka where named)


def _fields(rid: str) -> dict[str, Any]:
    return {"response_id": rid, "tenant_id": "t", "deadline_at": deadline_in(30), "mode": "moe-orchestrator"}


def _task(task_id: str) -> PlannedTask:
    return PlannedTask(task_id=task_id, category="general", instruction=f"do {task_id}")


async def test_each_message_is_stored_and_read_back_in_one_round_trip(infra: dict[str, str], namespace: str) -> None:
    redis = redis_client(infra["redis"])
    state = MergerState(redis, namespace, ttl_s=60)
    rid = f"r-{namespace}"
    try:
        with own_ops("redis") as ops:
            snap = await state.save_result(TaskResult(**_fields(rid), task_id="a", category="general", content="A"))
        assert sum(ops.values()) == 1
        assert snap.plan is None and snap.answer is None  # a result before its plan: nothing to finish yet

        with own_ops("redis") as ops:
            snap = await state.save_plan(Plan(**_fields(rid), question="q", tasks=[_task("a"), _task("b")]))
        assert sum(ops.values()) == 1
        assert snap.plan is not None and [t.task_id for t in snap.plan.tasks] == ["a", "b"]
        assert list(snap.results) == ["a"] and snap.results["a"].content == "A"

        assert await state.add_fallback(rid, _task("web"))
        with own_ops("redis") as ops:
            snap = await state.save_result(TaskResult(**_fields(rid), task_id="b", category="general", content="B"))
        assert sum(ops.values()) == 1
        assert snap.plan is not None and [t.task_id for t in snap.plan.tasks] == ["a", "b", "web"]
        assert sorted(snap.results) == ["a", "b"]

        stored = await state.put_answer(Answer(**_fields(rid), content="done"))
        with own_ops("redis") as ops:
            snap = await state.snapshot(rid)  # a redelivery: the stored answer, nothing else to do
        assert sum(ops.values()) == 1
        assert snap.answer is not None and snap.answer.content == stored.content == "done" and snap.plan is None
    finally:
        await redis.delete(*[k async for k in redis.scan_iter(f"merger:{namespace}:*")] or ["-"])
        await redis.aclose()


async def test_a_stored_draft_is_read_back(infra: dict[str, str], namespace: str) -> None:
    redis = redis_client(infra["redis"])
    state = MergerState(redis, namespace, ttl_s=60)
    rid = f"d-{namespace}"
    try:
        await state.save_plan(Plan(**_fields(rid), question="q", tasks=[_task("a")]))
        await state.put_draft(Draft(**_fields(rid), question="q", answer=Answer(**_fields(rid), content="x")))
        snap = await state.snapshot(rid)
        assert snap.draft is not None and snap.draft.answer.content == "x" and snap.answer is None
    finally:
        await redis.delete(*[k async for k in redis.scan_iter(f"merger:{namespace}:*")] or ["-"])
        await redis.aclose()
