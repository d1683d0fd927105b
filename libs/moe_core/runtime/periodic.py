"""A background loop of a service: one step every interval, started in the app's lifespan and cancelled at its end.

`step` handles its own expected failures; anything else it raises is logged and the loop goes on at the next
interval (a store or broker outage must not end housekeeping for the process's life)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, step: Callable[[], Awaitable[Any]], interval_s: Callable[[], float], *, first: bool,
                 what: str) -> None:
        """first: run the step at start (True) or after the first interval (False)."""
        self.step, self.interval_s, self.first, self.what = step, interval_s, first, what
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        if not self.first:
            await asyncio.sleep(self.interval_s())
        while True:
            try:
                await self.step()
            except Exception as exc:
                log.warning("%s failed: %s", self.what, exc)
            await asyncio.sleep(self.interval_s())
