"""Stop a request's remaining LLM calls when its client went away (topic `cancel`).

Every process of a stage that calls models subscribes to `cancel` without a group, so each one sees
every Cancel. On a Cancel it marks the request (in memory and in Redis, `cancel:<namespace>:<response_id>`
with a TTL, so a task that is consumed later — or by a process that started later — is refused too) and
cancels that request's calls in flight. Stages call `check` before a model call, or run the work through
`run`, which does both and turns the cancellation into `RequestCancelled`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import Redis

from moe_core.contracts import Cancel

log = logging.getLogger(__name__)
T = TypeVar("T")
LOCAL_MAX = 10_000


class RequestCancelled(Exception):
    """The request was cancelled; its remaining work must not call a model."""

    def __init__(self, response_id: str) -> None:
        super().__init__(f"request {response_id} was cancelled")
        self.response_id = response_id


class Cancellations:
    def __init__(self, redis: Redis, namespace: str, ttl_s: int = 3600) -> None:
        self.redis = redis
        self.prefix = f"cancel:{namespace}"
        self.ttl_s = ttl_s
        self._marked: dict[str, float] = {}
        self._inflight: dict[str, set[asyncio.Future[Any]]] = {}

    def _key(self, rid: str) -> str:
        return f"{self.prefix}:{rid}"

    def key(self, rid: str) -> str:
        """The Redis key of request `rid`'s mark, for a caller that reads it in a pipeline of its own (`note`)."""
        return self._key(rid)

    def note(self, rid: str, marked: bool) -> None:
        """The caller read `key(rid)` in its own round trip: remember a mark, so `run(..., checked=True)` and
        `is_cancelled(..., checked=True)` after it need no round trip of their own."""
        if marked:
            self._mark(rid)

    def subscribe(self, bus: Any, then: Callable[[Cancel], Awaitable[None]] | None = None) -> Any:
        """Broadcast subscription (no group): every process of the stage sees every Cancel."""

        async def on_cancel(message: Cancel) -> None:
            await self.cancel(message.response_id)
            if then is not None:
                await then(message)

        return bus.subscribe(bus.topics.cancel, Cancel, on_cancel, group=False, offset_reset="latest")

    async def cancel(self, rid: str) -> None:
        """Mark the request cancelled and cancel its calls in flight in this process."""
        self._mark(rid)
        for future in list(self._inflight.get(rid, ())):
            future.cancel()
        await self.redis.set(self._key(rid), "1", ex=self.ttl_s)
        log.debug("request cancelled")  # every process of the stage sees every Cancel: not one INFO line each

    async def is_cancelled(self, rid: str, *, checked: bool = False) -> bool:
        """checked=True: Redis was just asked (`read_with`, `note`): only this process's marks are looked at."""
        if rid in self._marked:
            return True
        if checked:
            return False
        if await self.redis.exists(self._key(rid)):
            self._mark(rid)
            return True
        return False

    async def read_with(self, rid: str, key: str,
                        also: Callable[[Any], Callable[[list[Any]], None]] | None = None) -> str | None:
        """GET `key` (e.g. a stored outcome) and learn whether request `rid` was cancelled, in one round trip (a
        pipeline): a `run(rid, work, checked=True)` after it needs no round trip of its own. `also(pipe)` queues
        further reads on the same pipeline and returns what takes their replies."""
        known = rid in self._marked
        if known and also is None:
            value = await self.redis.get(key)
        else:
            pipe = self.redis.pipeline(transaction=False)
            pipe.get(key)
            if not known:
                pipe.exists(self._key(rid))
            take = also(pipe) if also is not None else None
            replies = await pipe.execute()
            value = replies[0]
            if not known and replies[1]:
                self._mark(rid)
            if take is not None:
                take(replies[1 if known else 2:])
        return value if isinstance(value, str) or value is None else str(value)

    async def check(self, rid: str) -> None:
        if await self.is_cancelled(rid):
            raise RequestCancelled(rid)

    async def run(self, rid: str, work: Awaitable[T], *, checked: bool = False) -> T:
        """Run `work` unless the request is cancelled; a Cancel while it runs stops it (RequestCancelled).
        checked=True: Redis was just asked (`read_with`), so only this process's marks are looked at."""
        try:
            if checked:
                if rid in self._marked:
                    raise RequestCancelled(rid)
            else:
                await self.check(rid)
        except BaseException:
            _close(work)
            raise
        future: asyncio.Future[T] = asyncio.ensure_future(work)
        self._inflight.setdefault(rid, set()).add(future)
        if rid in self._marked:  # a Cancel arrived while the check was waiting for Redis
            future.cancel()
        try:
            return await future
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():  # we are being cancelled, not the request
                future.cancel()
                raise
            raise RequestCancelled(rid) from None
        finally:
            running = self._inflight.get(rid)
            if running is not None:
                running.discard(future)
                if not running:
                    del self._inflight[rid]

    def _mark(self, rid: str) -> None:
        now = time.monotonic()
        self._marked[rid] = now
        if len(self._marked) > LOCAL_MAX:
            horizon = now - self.ttl_s
            self._marked = {k: t for k, t in self._marked.items() if t > horizon}


def _close(work: Awaitable[Any]) -> None:
    close = getattr(work, "close", None)  # a coroutine that will never run: avoid the "never awaited" warning
    if callable(close):
        close()
