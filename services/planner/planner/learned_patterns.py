"""Learned planner patterns (the original's `moe:planner_success`, a sorted set kept 180 days): the expert
combinations of answers users rated well, remembered and offered to the planner model again.

A user's rating of 4 or 5 (the original's positive feedback) adds the answer's expert combination — the sorted
categories of its `models_used`, e.g. `legal_advisor+medical_consult` — once per answer: its success count grows
and its last success time is set. A combination with no success for `MOE_PLANNER_PATTERNS_RETENTION_DAYS` (180)
is forgotten. The planner model's prompt names the `MOE_PLANNER_LEARNED_PATTERNS` most successful combinations
(3; 0: none), so a question like one that went well gets planned the same way; GET /v1/admin/planner-patterns
lists them.

Patterns are a tenant's own (`planner:success:<ns>:<tenant>`): a tenant's ratings shape its own plans only, never
another tenant's. The hint the planner model saw is recorded on the plan (`Plan.learned_patterns`), and a replay as
recorded takes it from there (`ChatRequest.recorded_patterns`) instead of today's patterns.
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


MAX_CACHED_TENANTS = 1000  # the hints' per-tenant read cache starts afresh past this many tenants


class LearnedPatterns:
    def __init__(self, redis: Redis, namespace: str, retention_days: float, refresh_s: float = 30.0) -> None:
        self.redis = redis
        self.namespace = namespace
        self.seen = f"planner:success-seen:{namespace}:"  # + response_id: each answer counts once
        self.retention_s = int(retention_days * DAY_S)
        self.refresh_s = refresh_s
        self._top: dict[str, tuple[float, list[Learned]]] = {}  # tenant -> (read at, top) for the planner's prompt

    def last(self, tenant: str) -> str:
        """The tenant's zset: combination -> its last success (unix time)."""
        return f"planner:success:{self.namespace}:{tenant}"

    def counts(self, tenant: str) -> str:
        """The tenant's hash: combination -> successes."""
        return f"planner:success-count:{self.namespace}:{tenant}"

    async def record(self, feedback: Feedback, now: float | None = None) -> bool:
        """Remember a positively rated answer's combination (True) or ignore the rating (False)."""
        pattern = pattern_of(feedback)
        if feedback.rating < POSITIVE or feedback.source != "user" or pattern is None:
            return False
        if not await self.redis.set(self.seen + feedback.response_id, 1, nx=True, ex=self.retention_s):
            return False  # a redelivered or repeated rating of the same answer
        now = time.time() if now is None else now
        tenant = feedback.tenant_id
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self.last(tenant), {pattern: now})
            pipe.hincrby(self.counts(tenant), pattern, 1)
            await pipe.execute()
        await self.forget_old(tenant, now)
        self._top.pop(tenant, None)
        return True

    async def forget_old(self, tenant: str, now: float | None = None) -> list[str]:
        """Drop the tenant's combinations with no success within the retention; returns them."""
        now = time.time() if now is None else now
        raw = await self.redis.zrangebyscore(self.last(tenant), "-inf", now - self.retention_s)
        old = [m.decode() if isinstance(m, bytes) else str(m) for m in raw]
        if old:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zrem(self.last(tenant), *old)
                pipe.hdel(self.counts(tenant), *old)
                await pipe.execute()
        return old

    async def top(self, tenant: str, n: int, now: float | None = None) -> list[Learned]:
        """The tenant's `n` most successful combinations still within the retention: pattern, successes, last
        success."""
        now = time.time() if now is None else now
        recent = cast(list[tuple[Any, float]], await self.redis.zrangebyscore(
            self.last(tenant), now - self.retention_s, "+inf", withscores=True))
        if not recent:
            return []
        names = [m.decode() if isinstance(m, bytes) else str(m) for m, _ in recent]
        counts = await self.redis.hmget(self.counts(tenant), names)
        rows = [Learned(name, int(c or 0), float(at)) for name, c, (_, at) in zip(names, counts, recent, strict=True)]
        rows.sort(key=lambda r: (-r.successes, -r.last_success, r.pattern))
        return rows[:n]

    async def hints(self, tenant: str, n: int) -> list[str]:
        """The planner prompt's combinations for the tenant's request (read at most every `refresh_s` per tenant,
        not per request)."""
        if n <= 0:
            return []
        now = time.monotonic()
        cached = self._top.get(tenant)
        if cached is None or now - cached[0] > self.refresh_s:
            if len(self._top) >= MAX_CACHED_TENANTS:
                self._top.clear()
            cached = self._top[tenant] = (now, await self.top(tenant, n))
        return [row.pattern for row in cached[1][:n]]
