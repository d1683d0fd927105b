"""The overhead ledger's arithmetic and its CPU meter (moe_core.runtime.observability.ledger): the union of a run's
model
spans, the model time on a request's critical path, the CPU of a run's own steps and of its threads, and a thrown
error or cancellation reaching the metered coroutine unchanged."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from moe_core.contracts import StageCost
from moe_core.runtime.observability import ledger
from moe_core.runtime.observability.ledger import (
    RUN_LEDGER,
    RunLedger,
    critical_model_ms,
    metered,
    overhead_ms,
    union_s,
)

pytestmark = pytest.mark.unit


def test_overlapping_model_calls_of_one_run_count_once() -> None:
    assert union_s([(0.0, 1.0), (0.5, 1.5), (3.0, 4.0), (3.2, 3.4)]) == pytest.approx(2.5)
    assert union_s([]) == 0.0


def test_the_critical_path_adds_request_level_runs_and_takes_the_longest_task() -> None:
    plan = StageCost(stage="planner", model_ms=10.0)
    experts = [StageCost(stage="expert-worker", task_id=t, model_ms=ms) for t, ms in (("a", 30.0), ("b", 50.0))]
    merge = StageCost(stage="merger", model_ms=20.0)
    assert critical_model_ms([plan, *experts, merge, None]) == 80.0  # 10 + max(30, 50) + 20
    assert overhead_ms(0.1, [plan, *experts, merge]) == 20.0  # 100 ms at the edge, 80 of them in models
    assert overhead_ms(0.05, [plan, *experts, merge]) == 0.0  # never negative


def _burn() -> str:
    data = b"x" * 4096
    for _ in range(3000):
        data = hashlib.sha256(data).digest() * 128
    return data[:4].hex()


async def test_a_runs_cpu_is_its_own_steps_and_its_threads_not_its_waits() -> None:
    run = RunLedger()
    token = RUN_LEDGER.set(run)
    try:
        async def handler() -> str:
            await asyncio.sleep(0.2)  # waiting costs no CPU
            _burn()  # a step that works
            return await ledger.to_thread(_burn)  # work handed to a thread

        await metered(handler(), run)
        cost = run.cost("planner")
    finally:
        RUN_LEDGER.reset(token)
    alone = RunLedger()
    await metered(asyncio.sleep(0.2), alone)
    assert cost.cpu_ms > 0 and run.thread_cpu_s and run.thread_cpu_s[0] > 0 and run.cpu_s > 0
    assert alone.cost("planner").cpu_ms < cost.cpu_ms  # the same wait without the work
    assert cost.handler_ms > 0  # the run's wall time from its start
    assert cost.model_calls == 0 and cost.model_ms == 0.0


async def test_model_calls_of_the_current_run_are_noted_and_errors_pass_through() -> None:
    run = RunLedger()
    token = RUN_LEDGER.set(run)
    try:
        async def failing() -> None:
            ledger.model_call(run.started)
            raise ValueError("the handler's own error")

        with pytest.raises(ValueError, match="own error"):
            await metered(failing(), run)
        task = asyncio.ensure_future(metered(asyncio.sleep(30), run))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        RUN_LEDGER.reset(token)
    assert run.cost("merger").model_calls == 1 and run.step_started is None
    assert ledger.stage_cost("merger") is None  # outside a run: nothing to stamp
