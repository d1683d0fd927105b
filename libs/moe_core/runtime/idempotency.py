"""At-least-once delivery means handlers see messages twice: remember outcomes so repeats agree."""

from __future__ import annotations

from redis.asyncio import Redis

from moe_core.runtime import redis_batch


class Memo:
    """First writer wins: the stored outcome of a key is what every later attempt republishes."""

    def __init__(self, redis: Redis, prefix: str, ttl_s: int = 3600) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl_s = ttl_s

    def key(self, key: str) -> str:
        """The Redis key of `key`'s outcome."""
        return f"{self.prefix}:{key}"

    async def get(self, key: str) -> str | None:
        value = await self.redis.get(self.key(key))
        return value if isinstance(value, str) or value is None else str(value)

    async def put_first(self, key: str, value: str) -> str:
        """Store `value` unless an outcome exists; return the outcome that stands. Writes the handler deferred
        (moe_core.runtime.redis_batch, e.g. its model calls' budget give-backs) go out in the same round trip, first."""
        if redis_batch.pending():
            pipe = self.redis.pipeline(transaction=False)
            redis_batch.flush_into(pipe)
            pipe.set(self.key(key), value, nx=True, ex=self.ttl_s)
            stored = (await pipe.execute())[-1]
        else:
            stored = await self.redis.set(self.key(key), value, nx=True, ex=self.ttl_s)
        if stored:
            return value
        return await self.get(key) or value
