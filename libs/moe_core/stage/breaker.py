"""A stage's stores behind circuit breakers: a store that failed as an outage (Neo4j unreachable, hung) is marked
down, and while it is down the stage's tasks fail at once with the reason (their outcome is a TaskResult with
`error`, which the merger counts as missing) instead of each waiting for the store's timeout and being redelivered
with backoff while the request waits for its deadline. A background probe (the store's own ping, every
PROBE_INTERVAL_S) marks it up again. The state is `moe_store_up{service, store}` (1 up, 0 down) and /ready names
the store and the reason.

The probe must close the breaker within a bounded number of intervals once the store is back, whatever the outage
did to its client: each attempt is one try bounded by PROBE_TIMEOUT_S (a hung ping or a ping inside the driver's
own retry loop cannot hold it), an error of any kind, a stray CancelledError from the driver's clean-up included,
is "still down" (only the probe's own cancellation at close ends it), and a probe that ended without marking the
store up is started again by the next check. Before this the breaker could stay down after the store returned
(the chaos tier's warm-ups after a Neo4j restart).

The first task that meets the outage waits once for the store's own timeout (seconds: GraphDB's QUERY_TIMEOUT_S);
every task after it, until the probe succeeds, costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from moe_core.runtime.observability.metrics import STORE_UP

log = logging.getLogger(__name__)
T = TypeVar("T")
PROBE_INTERVAL_S = 2.0  # while a store is down, how often its ping is tried
PROBE_TIMEOUT_S = 5.0  # one probe attempt at most


class StoreDown(ConnectionError):
    """A store the stage needs is marked down: the task fails at once with this reason."""

    def __init__(self, store: str, reason: str) -> None:
        super().__init__(f"{store} unavailable: {reason}")
        self.store, self.reason = store, reason


class Breaker:
    """One store's circuit breaker in one process: up, or down with a reason and a probe running."""

    def __init__(self, service: str, store: str, probe: Callable[[], Awaitable[None]],
                 outages: tuple[type[BaseException], ...], interval_s: float = PROBE_INTERVAL_S,
                 timeout_s: float = PROBE_TIMEOUT_S) -> None:
        """`outages`: the exceptions that mean "the store is out" (not "this query is wrong"), e.g. GraphUnavailable.
        `probe`: one attempt to reach the store (no retries of its own: the breaker retries every `interval_s`)."""
        self.service, self.store, self.probe, self.interval_s = service, store, probe, interval_s
        self.timeout_s = timeout_s
        self.outages = outages
        self.reason: str | None = None
        self._probing: asyncio.Task[None] | None = None
        STORE_UP.labels(service, store).set(1)

    def check(self) -> None:
        """Raise StoreDown while the store is marked down (and make sure a probe is running)."""
        if self.reason is not None:
            self._ensure_probing()
            raise StoreDown(self.store, self.reason)

    def trip(self, exc: BaseException) -> StoreDown:
        """Mark the store down after an outage (`exc`), start probing it; the StoreDown a task fails with."""
        if self.reason is None:
            self.reason = f"{type(exc).__name__}: {exc}"[:300]
            STORE_UP.labels(self.service, self.store).set(0)
            log.warning("%s marked down (tasks fail at once until a probe succeeds): %s", self.store, self.reason)
        self._ensure_probing()
        return StoreDown(self.store, self.reason)

    def _ensure_probing(self) -> None:
        """A probe running while the store is down: started by the trip, again if one ended without success."""
        if self._probing is None or self._probing.done():
            # a context of its own: not the tripping task's (its request id in every log line, its deferred writes)
            self._probing = asyncio.create_task(self._probe_until_up(), name=f"probe-{self.store}",
                                                context=contextvars.Context())

    async def _attempt(self) -> str | None:
        """One bounded probe: None when the store answered, else why not."""
        try:
            async with asyncio.timeout(self.timeout_s):
                await self.probe()
        except TimeoutError:
            return f"no answer within {self.timeout_s} s"
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the probe itself is cancelled (close): stop
            return f"CancelledError: {exc}"  # a stray one from the client's clean-up: still down
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    async def _probe_until_up(self) -> None:
        while self.reason is not None:
            await asyncio.sleep(self.interval_s)
            failed = await self._attempt()
            if failed is not None:  # still down: keep the latest reason
                self.reason = failed[:300]
                continue
            self.reason = None
            STORE_UP.labels(self.service, self.store).set(1)
            log.warning("%s is up again", self.store)

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
