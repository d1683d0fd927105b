"""The merger's Redis state per message, client side (issue 52): `python -m bench.merger_store_costs [N]` stores a
plan of three tasks and its three results with MergerState (each message's write and the request's state read back,
the Cancel mark and the fleet configuration's overlay with it, as the merger runs) against the local fleet's Redis,
N requests, and prints this process's CPU and Python function calls (cProfile's count, a second pass) per message.
Run with PYTHONPATH=<another tree's services/merger> to measure that tree's MergerState: compare trees alternated."""

from __future__ import annotations

import cProfile
import pstats
import sys
import time
import uuid
from typing import Any

import uvloop

from bench.infra import connect
from merger.state import MergerState
from moe_core.contracts import Plan, PlannedTask, TaskResult, deadline_in
from moe_core.runtime.stores import redis_client

TASKS = ("t1", "t2", "g1")


def _messages(rid: str) -> list[Plan | TaskResult]:
    fields: dict[str, Any] = {"response_id": rid, "tenant_id": "t-store", "deadline_at": deadline_in(60)}
    plan = Plan(**fields, mode="moe-orchestrator", question="What about tides?",
                tasks=[PlannedTask(task_id=t, category="general", instruction=f"do {t}") for t in TASKS])
    return [plan, *[TaskResult(**fields, task_id=t, category="general", content="The Moon pulls the sea. " * 20,
                               confidence="medium", model="expert-model", server="s") for t in TASKS]]


async def _run(url: str, n: int) -> None:
    redis = redis_client(url)
    namespace = f"store-{uuid.uuid4().hex[:8]}"
    state = MergerState(redis, namespace, 300, cancel_key=lambda rid: f"cancel:{namespace}:{rid}",
                        overlay_key=f"inference:{namespace}:overlay")

    async def requests(count: int) -> None:
        for _ in range(count):
            for message in _messages(f"r{uuid.uuid4().hex[:12]}"):
                if isinstance(message, Plan):
                    await state.save_plan(message)
                else:
                    await state.save_result(message)

    try:
        await requests(50)  # warm-up (the script cached, the connection open)
        cpu = time.process_time()
        await requests(n)
        cpu = time.process_time() - cpu
        profiler = cProfile.Profile()
        profiler.enable()
        await requests(n)
        profiler.disable()
        calls = pstats.Stats(profiler).total_calls  # type: ignore[attr-defined]
        per = n * (1 + len(TASKS))
        print(f"{per} messages: {cpu * 1e6 / per:.0f} us CPU and {calls / per:.0f} function calls per message")
    finally:
        await redis.delete(*[k async for k in redis.scan_iter(f"merger:{namespace}:*")] or ["-"])
        await redis.aclose()


if __name__ == "__main__":
    uvloop.run(_run(connect(["redis"])["redis"], int(sys.argv[1]) if len(sys.argv) > 1 else 500))
