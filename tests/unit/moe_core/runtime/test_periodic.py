"""A service's background loop: runs its step every interval, outlives a failing step, stops when closed."""

from __future__ import annotations

import asyncio

import pytest

from moe_core.runtime.periodic import Periodic

pytestmark = pytest.mark.unit


class Step:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("redis away")


def test_the_loop_outlives_a_failing_step_and_stops_when_closed() -> None:
    async def run() -> None:
        step = Step()
        loop = Periodic(step, lambda: 0.001, first=True, what="test loop")
        loop.start()
        loop.start()  # a second start is no second loop
        while step.calls < 3:
            await asyncio.sleep(0.001)
        await loop.close()
        closed = step.calls
        for _ in range(20):
            await asyncio.sleep(0.001)
        assert step.calls == closed

    asyncio.run(run())


@pytest.mark.parametrize(("first", "runs_at_start"), [(True, 1), (False, 0)])
def test_the_first_step_runs_at_start_or_after_one_interval(first: bool, runs_at_start: int) -> None:
    async def run() -> int:
        step = Step()
        loop = Periodic(step, lambda: 3600, first=first, what="test loop")
        loop.start()
        for _ in range(5):
            await asyncio.sleep(0)
        await loop.close()
        return step.calls

    assert asyncio.run(run()) == runs_at_start
