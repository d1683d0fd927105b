"""Learned planner patterns (the original's `moe:planner_success`, a sorted set kept 180 days): the expert
combinations of answers users rated well, remembered and offered to the planner model again.

A user's rating of 4 or 5 (the original's positive feedback) adds the answer's expert combination — the sorted
categories of its `models_used`, e.g. `legal_advisor+medical_consult` — once per answer: its success count grows
and its last success time is set. A combination with no success for `MOE_PLANNER_PATTERNS_RETENTION_DAYS` (180)
is forgotten. The planner model's prompt names the `MOE_PLANNER_LEARNED_PATTERNS` most successful combinations
(3; 0: none), so a question like one that went well gets planned the same way; GET /v1/admin/planner-patterns
lists them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis

from moe_core.contracts import Feedback

POSITIVE = 4  # the original's positive ratings: 4 and 5
DAY_S = 86400


@dataclass(frozen=True)
class Learned:
    pattern: str  # the sorted categories, joined by "+"
    successes: int
    last_success: float  # unix time


def pattern_of(feedback: Feedback) -> str | None:
    """The answer's expert combination, or None (no expert answered: a cache hit, a tool-only answer)."""
    categories = sorted({use.category for use in feedback.models_used if use.category})
    return "+".join(categories) or None


class LearnedPatterns:
    def __init__(self, redis: Redis, namespace: str, retention_days: float, refresh_s: float = 30.0) -> None:
        self.redis = redis
        self.last = f"planner:success:{namespace}"  # zset: combination -> its last success (unix time)
        self.counts = f"planner:success-count:{namespace}"  # hash: combination -> successes
        self.seen = f"planner:success-seen:{namespace}:"  # + response_id: each answer counts once
        self.retention_s = int(retention_days * DAY_S)
        self.refresh_s = refresh_s
        self._top: tuple[float, list[Learned]] | None = None  # (read at, top) for the planner's prompt

    async def record(self, feedback: Feedback, now: float | None = None) -> bool:
        """Remember a positively rated answer's combination (True) or ignore the rating (False)."""
        pattern = pattern_of(feedback)
        if feedback.rating < POSITIVE or feedback.source != "user" or pattern is None:
            return False
        if not await self.redis.set(self.seen + feedback.response_id, 1, nx=True, ex=self.retention_s):
            return False  # a redelivered or repeated rating of the same answer
        now = time.time() if now is None else now
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self.last, {pattern: now})
            pipe.hincrby(self.counts, pattern, 1)
            await pipe.execute()
        await self.forget_old(now)
        self._top = None
        return True

    async def forget_old(self, now: float | None = None) -> list[str]:
        """Drop the combinations with no success within the retention; returns them."""
        now = time.time() if now is None else now
        raw = await self.redis.zrangebyscore(self.last, "-inf", now - self.retention_s)
        old = [m.decode() if isinstance(m, bytes) else str(m) for m in raw]
        if old:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zrem(self.last, *old)
                pipe.hdel(self.counts, *old)
                await pipe.execute()
        return old

    async def top(self, n: int, now: float | None = None) -> list[Learned]:
        """The `n` most successful combinations still within the retention: pattern, successes, last success."""
        now = time.time() if now is None else now
        recent = cast(list[tuple[Any, float]],
                      await self.redis.zrangebyscore(self.last, now - self.retention_s, "+inf", withscores=True))
        if not recent:
            return []
        names = [m.decode() if isinstance(m, bytes) else str(m) for m, _ in recent]
        counts = await self.redis.hmget(self.counts, names)
        rows = [Learned(name, int(c or 0), float(at)) for name, c, (_, at) in zip(names, counts, recent, strict=True)]
        rows.sort(key=lambda r: (-r.successes, -r.last_success, r.pattern))
        return rows[:n]

    async def hints(self, n: int) -> list[str]:
        """The planner prompt's combinations (read at most every `refresh_s`, not per request)."""
        if n <= 0:
            return []
        now = time.monotonic()
        if self._top is None or now - self._top[0] > self.refresh_s:
            self._top = (now, await self.top(n))
        return [row.pattern for row in self._top[1][:n]]
