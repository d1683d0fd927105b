"""Plan cache (Redis): the planner model's plan for a normalised question, reused until its TTL ends.

Only plans the planner model made (source "llm") are stored; the key is the namespace, the mode and the
normalised question, so a repeated question skips the planner call even when its answer was not cached
(e.g. a different tenant, or an answer that was flagged).
"""

from __future__ import annotations

from pydantic import BaseModel, Field, ValidationError
from redis.asyncio import Redis

from moe_core.contracts import Complexity, PlannedTask
from moe_core.llm.exact_cache import question_key
from moe_core.runtime import redis_batch


class CachedPlan(BaseModel):
    tasks: list[PlannedTask] = Field(min_length=1)
    complexity: Complexity = "moderate"
    planner_model: str | None = None


class PlanCache:
    def __init__(self, redis: Redis, namespace: str, ttl_s: int) -> None:
        self.redis = redis
        self.prefix = f"planner:plancache:{namespace}"
        self.ttl_s = ttl_s

    def key(self, mode: str, question: str) -> str:
        return question_key(self.prefix, mode, question)

    async def get(self, mode: str, question: str) -> CachedPlan | None:
        raw = await self.redis.get(self.key(mode, question))
        if raw is None:
            return None
        try:
            return CachedPlan.model_validate_json(raw)
        except ValidationError:
            return None

    async def put(self, mode: str, question: str, plan: CachedPlan) -> None:
        """In the planner's handler the write goes with its stored outcome (moe_core.runtime.redis_batch)."""
        key, value, ttl = self.key(mode, question), plan.model_dump_json(), self.ttl_s
        await redis_batch.send(self.redis, lambda pipe: pipe.set(key, value, ex=ttl))
