"""Redis writes a handler may send later, with its next round trip instead of one of their own.

Inside `deferring(redis)` (a stage opens it around the handling of one message), a write that nothing reads
before the handler's next Redis round trip is queued with `defer` instead of sent: e.g. the token-budget
give-back after a model call (moe_core.llm.token_budget). The next pipeline of the same handler that calls
`flush_into(pipe)` carries the queued writes in front of its own commands (the next call's budget take, the
stored outcome, the merger's answer); whatever is still queued when the scope ends goes out in one pipeline
then, also when the handler failed. So every deferred write reaches Redis before the handler's outcome is
stored or published, as before, one round trip later at most. Outside a scope `defer` returns False and the
caller sends the write itself; `send` does either (nothing changes for stages that open none).

The queue is shared by reference with the tasks the handler starts (asyncio copies the context), so a write
deferred in a side-by-side model call is flushed by whichever round trip of the handler comes next.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

Write = Callable[[Any], Any]  # queues one command on a pipeline (redis.asyncio.client.Pipeline)

_QUEUE: ContextVar[list[Write] | None] = ContextVar("moe_deferred_redis_writes", default=None)


@contextlib.asynccontextmanager
async def deferring(redis: Redis) -> AsyncIterator[None]:
    """Defer writes (`defer`) until the next `flush_into` of this scope, or its end (one pipeline)."""
    queue: list[Write] = []
    token = _QUEUE.set(queue)
    try:
        yield
    finally:
        _QUEUE.reset(token)
        if queue:
            pipe = redis.pipeline(transaction=False)
            flush(queue, pipe)
            try:
                await pipe.execute()
            except (RedisError, OSError) as exc:  # as a write sent at once: logged by its owner's rule, never raised
                log.warning("%d deferred Redis writes not sent: %s", len(queue), exc)


def defer(write: Write) -> bool:
    """Queue `write` for the current scope's next round trip; False outside a scope (send it now)."""
    queue = _QUEUE.get()
    if queue is None:
        return False
    queue.append(write)
    return True


async def send(redis: Redis, command: Write) -> None:
    """`command` (it queues its writes on a pipeline) with the current scope's next round trip; outside a scope
    sent now, as one round trip. For writes nothing reads before the handler's outcome is stored."""
    if defer(command):
        return
    pipe = redis.pipeline(transaction=False)
    command(pipe)
    await pipe.execute()


def pending() -> int:
    """Writes queued in the current scope."""
    queue = _QUEUE.get()
    return len(queue) if queue else 0


def flush_into(pipe: Any) -> int:
    """Queue the current scope's deferred writes on `pipe` (before the caller's own commands); how many."""
    queue = _QUEUE.get()
    return flush(queue, pipe) if queue else 0


def flush(queue: list[Write], pipe: Any) -> int:
    writes = list(queue)
    queue.clear()
    for write in writes:
        write(pipe)
    return len(writes)
