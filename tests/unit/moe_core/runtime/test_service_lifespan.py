"""A service's lifespan closes what it opened: when a start step fails half-way (a background loop already
running), and when one shutdown step fails (the ones after it still run)."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI

from moe_core.runtime.bus import Bus
from moe_core.runtime.service import Hook, create_service_app
from moe_core.runtime.settings import FleetSettings

pytestmark = pytest.mark.unit


class Loop:
    """A background loop like the control plane's settle sweeper: started by a start step, stopped by a shutdown one."""

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(asyncio.sleep(3600))

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()


def app_with(loop: Loop, on_startup: list[Hook], on_shutdown: list[Hook]) -> FastAPI:
    settings = FleetSettings(service_name="lifespan-test", startup_retry_s=0)
    return create_service_app(settings, Bus(settings), on_startup=[loop.start, *on_startup],
                              on_shutdown=on_shutdown, manage_broker=False)


def test_a_start_that_fails_after_a_loop_started_stops_the_loop() -> None:
    loop, closed = Loop(), []

    async def broken() -> None:
        raise ValueError("bad settings")

    async def close_store() -> None:
        closed.append("store")

    app = app_with(loop, [broken], [loop.close, close_store])

    async def run() -> None:
        with pytest.raises(ValueError, match="bad settings"):
            async with app.router.lifespan_context(app):
                pass
        await asyncio.sleep(0)
        assert loop.task is not None and loop.task.cancelled()

    asyncio.run(run())
    assert closed == ["store"]


def test_a_failing_shutdown_step_does_not_keep_the_next_ones_from_running() -> None:
    loop, closed = Loop(), []

    async def fails() -> None:
        raise RuntimeError("the graph store is gone")

    async def close_store() -> None:
        closed.append("store")

    app = app_with(loop, [], [fails, loop.close, close_store])

    async def run() -> None:
        async with app.router.lifespan_context(app):
            assert loop.task is not None and not loop.task.done()
        await asyncio.sleep(0)
        assert loop.task.cancelled()

    asyncio.run(run())
    assert closed == ["store"]


class Hanging:
    """A subscriber whose consumer's stop never returns: a commit retried while the group rebalances, a LeaveGroup
    the broker does not answer (test_graceful_stop's stage was SIGKILLed so, its log ending in a rebalance)."""

    def __init__(self) -> None:
        self.stopping = asyncio.Event()
        self.cancelled = False

    async def stop(self) -> None:
        self.stopping.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.cancelled = True
            raise


async def test_a_subscriber_whose_stop_hangs_is_given_up_after_its_bound(caplog: pytest.LogCaptureFixture) -> None:
    from moe_core.runtime.service import _stop
    hanging = Hanging()
    await asyncio.wait_for(_stop(hanging, 0.2), 5)  # returns: the service goes on to close its stores and end
    assert hanging.stopping.is_set() and hanging.cancelled
    assert "did not stop within 0.2 s" in caplog.text and "redelivered" in caplog.text


async def test_a_shutdown_that_is_itself_cancelled_is_not_swallowed() -> None:
    from moe_core.runtime.service import _stop
    hanging = Hanging()
    task = asyncio.get_running_loop().create_task(_stop(hanging, 60))
    await hanging.stopping.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
