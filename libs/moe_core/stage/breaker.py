"""A stage's stores behind circuit breakers: a store that failed as an outage (Neo4j unreachable, hung) is marked
down, and while it is down the stage's tasks fail at once with the reason (their outcome is a TaskResult with
`error`, which the merger counts as missing) instead of each waiting for the store's timeout and being redelivered
with backoff while the request waits for its deadline. A background probe (the store's own ping, every
PROBE_INTERVAL_S) marks it up again. The state is `moe_store_up{service, store}` (1 up, 0 down) and /ready names
the store and the reason.

The first task that meets the outage waits once for the store's own timeout (seconds: GraphDB's QUERY_TIMEOUT_S);
every task after it, until the probe succeeds, costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from moe_core.runtime.observability.metrics import STORE_UP

log = logging.getLogger(__name__)
T = TypeVar("T")
PROBE_INTERVAL_S = 2.0  # while a store is down, how often its ping is tried


class StoreDown(ConnectionError):
    """A store the stage needs is marked down: the task fails at once with this reason."""

    def __init__(self, store: str, reason: str) -> None:
        super().__init__(f"{store} unavailable: {reason}")
        self.store, self.reason = store, reason


class Breaker:
    """One store's circuit breaker in one process: up, or down with a reason and a probe running."""

    def __init__(self, service: str, store: str, probe: Callable[[], Awaitable[None]],
                 outages: tuple[type[BaseException], ...], interval_s: float = PROBE_INTERVAL_S) -> None:
        """`outages`: the exceptions that mean "the store is out" (not "this query is wrong"), e.g. GraphUnavailable."""
        self.service, self.store, self.probe, self.interval_s = service, store, probe, interval_s
        self.outages = outages
        self.reason: str | None = None
        self._probing: asyncio.Task[None] | None = None
        STORE_UP.labels(service, store).set(1)

    def check(self) -> None:
        """Raise StoreDown while the store is marked down."""
        if self.reason is not None:
            raise StoreDown(self.store, self.reason)

    def trip(self, exc: BaseException) -> StoreDown:
        """Mark the store down after an outage (`exc`), start probing it; the StoreDown a task fails with."""
        if self.reason is None:
            self.reason = f"{type(exc).__name__}: {exc}"[:300]
            STORE_UP.labels(self.service, self.store).set(0)
            log.warning("%s marked down (tasks fail at once until a probe succeeds): %s", self.store, self.reason)
            self._probing = asyncio.create_task(self._probe_until_up(), name=f"probe-{self.store}")
        return StoreDown(self.store, self.reason)

    async def _probe_until_up(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.probe()
            except Exception as exc:  # still down: keep the latest reason
                self.reason = f"{type(exc).__name__}: {exc}"[:300]
                continue
            self.reason = None
            STORE_UP.labels(self.service, self.store).set(1)
            log.warning("%s is up again", self.store)
            return

    async def ready(self) -> None:
        """/ready's check of the store: the breaker's reason while down (no wait), else the store's ping; an outage
        the ping meets marks the store down (so the state is right in a stage whose tasks do not use the breaker)."""
        self.check()
        try:
            await self.probe()
        except self.outages as exc:
            raise self.trip(exc) from exc

    async def close(self) -> None:
        if self._probing is not None:
            self._probing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probing


async def guarded(breakers: dict[str, Breaker], compute: Callable[[], Awaitable[T]],
                  unavailable: Callable[[StoreDown], T]) -> T:
    """`compute()`, or `unavailable(down)` at once while one of the stores is down, or when this computation meets
    an outage of one (which trips its breaker)."""
    try:
        for breaker in breakers.values():
            breaker.check()
        try:
            return await compute()
        except BaseException as exc:
            for breaker in breakers.values():
                if isinstance(exc, breaker.outages):
                    raise breaker.trip(exc) from exc
            raise
    except StoreDown as down:
        return unavailable(down)
