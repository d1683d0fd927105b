"""Key and tenant changes, announced fleet-wide: every gateway replica listens on one Redis pub/sub channel
and clears its key cache when a key is rotated or revoked or a tenant or key setting changes, so a revoked
key is refused everywhere within moments. If the subscription breaks, the listener clears the cache, waits
briefly and subscribes again (the cache TTL is the backstop for whatever was missed meanwhile)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
RETRY_S = 1.0


class KeyEvents:
    def __init__(self, redis: Redis, namespace: str, on_change: Callable[[], None]) -> None:
        self.redis = redis
        self.channel = f"moe:keys:{namespace}:changed"
        self.on_change = on_change
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def start(self) -> None:
        """Subscribe in the background; returns once the first subscription is in place (or failed once)."""
        self._task = asyncio.create_task(self._listen())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), 10)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def announce(self, what: str) -> None:
        """Tell every replica (this one included) that `what` (e.g. key:<id>) changed."""
        self.on_change()
        await self.redis.publish(self.channel, what)

    async def _listen(self) -> None:
        while True:
            try:
                async with self.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self.channel)
                    self.on_change()  # whatever changed while not subscribed
                    self._subscribed.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self.on_change()
            except (RedisError, OSError) as exc:
                log.warning("key change channel lost (%s); resubscribing", exc)
                self.on_change()
                self._subscribed.set()
                await asyncio.sleep(RETRY_S)
