"""The tasks a run starts are charged to its ledger (moe_core.runtime.observability.ledger.charge_tasks): gather's
children, create_task and ensure_future (Cancellations.run: the planner's planning) show in the run's StageCost; no
step is counted twice (the ledger never says more than the thread spent); a task that outlives its run is charged
only until the run's handler returns; a task made outside a run is left alone; errors, cancellations and the task's
repr pass through."""

from __future__ import annotations

import asyncio
import hashlib
import time

import pytest

from moe_core.runtime.observability.ledger import RUN_LEDGER, RunLedger, metered

pytestmark = pytest.mark.unit


def _burn() -> float:
    """CPU-bound work; the thread CPU seconds it took."""
    started, data = time.thread_time(), b"x" * 4096
    for _ in range(3000):
        data = hashlib.sha256(data).digest() * 128
    return time.thread_time() - started


async def _working() -> float:
    await asyncio.sleep(0)
    return _burn()


async def _run(handler: object) -> tuple[RunLedger, float]:
    """`handler` (a coroutine) metered as a stage run; the ledger and the thread CPU seconds the whole run took."""
    run = RunLedger()
    token = RUN_LEDGER.set(run)
    started = time.thread_time()
    try:
        await metered(handler, run)  # type: ignore[arg-type]
    finally:
        RUN_LEDGER.reset(token)
    return run, time.thread_time() - started


async def test_the_cpu_of_gather_children_and_created_tasks_is_the_runs() -> None:
    spent: list[float] = []

    async def handler() -> None:
        spent.extend(await asyncio.gather(_working(), _working()))  # gather's children
        spent.append(await asyncio.get_running_loop().create_task(_working()))  # create_task
        spent.append(await asyncio.ensure_future(_working()))  # ensure_future, as Cancellations.run

    run, thread = await _run(handler())
    cpu_ms = run.cost("planner").cpu_ms
    assert cpu_ms >= sum(spent) * 1000 > 0  # before: only the handler's own steps, none of the four burns
    assert cpu_ms <= thread * 1000 + 0.5  # and no step twice: never more than the thread spent


async def test_a_task_that_outlives_its_run_is_charged_only_until_the_run_ended() -> None:
    go_on = asyncio.Event()
    spent: list[float] = []

    async def writes_behind() -> None:
        spent.append(_burn())  # within the run
        await go_on.wait()
        spent.append(_burn())  # after the run's handler returned

    async def handler() -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(writes_behind())
        await asyncio.sleep(0.01)
        return task

    run = RunLedger()
    token = RUN_LEDGER.set(run)
    try:
        task = await metered(handler(), run)
    finally:
        RUN_LEDGER.reset(token)
    at_end = run.cost("planner").cpu_ms
    go_on.set()
    await task
    assert run.ended and len(spent) == 2
    assert at_end >= spent[0] * 1000  # its work during the run counts
    assert run.cost("planner").cpu_ms == at_end  # its work after does not


async def test_tasks_outside_a_run_are_left_alone_and_errors_pass_through() -> None:
    async def failing() -> None:
        await asyncio.sleep(0)
        raise ValueError("the task's own error")

    async def handler() -> None:
        with pytest.raises(ValueError, match="own error"):
            await asyncio.gather(failing(), _working())
        sleeper = asyncio.ensure_future(asyncio.sleep(30))
        await asyncio.sleep(0)
        assert "sleep" in repr(sleeper) and sleeper.get_stack()  # the task's coroutine shows through
        sleeper.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sleeper
        with pytest.raises(TypeError):
            asyncio.get_running_loop().create_task(asyncio.sleep)  # type: ignore[arg-type]

    run, _ = await _run(handler())
    assert run.step_started is None and run.cpu_s > 0
    outside = asyncio.get_running_loop().create_task(_working())
    assert asyncio.iscoroutine(outside.get_coro()) and type(outside.get_coro()).__name__ == "coroutine"
    await outside
