"""A round-trip count taken in a block holds whatever else runs in the process: the calls of this task and the
tasks it starts are counted, those of a task already running (an earlier test's stage heartbeat: a CI run
counted its SET in an expert task's round trips) are not."""

from __future__ import annotations

import asyncio

import pytest

from moe_core.runtime.observability.stores import calls_here, store_call

pytestmark = pytest.mark.unit


async def _call(op: str) -> None:
    with store_call("redis", op):
        await asyncio.sleep(0)


async def test_a_block_counts_its_own_calls_and_its_tasks_but_not_a_task_already_running() -> None:
    stop = asyncio.Event()

    async def heartbeat() -> None:
        while not stop.is_set():
            await _call("set")
            await asyncio.sleep(0.001)

    beating = asyncio.create_task(heartbeat())
    try:
        with calls_here() as calls:
            await _call("pipeline")
            await asyncio.gather(asyncio.create_task(_call("evalsha")), _call("pipeline"))
            await asyncio.sleep(0.02)  # the heartbeat beats meanwhile
        await _call("get")  # after the block
    finally:
        stop.set()
        await beating
    assert calls == {("redis", "pipeline"): 2, ("redis", "evalsha"): 1}
