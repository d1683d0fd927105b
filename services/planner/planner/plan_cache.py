"""Plan cache (Redis): the planner model's plan for a normalised question, reused until its TTL ends.

Only plans the planner model made (source "llm") are stored; the key is the namespace, the mode and the
normalised question, so a repeated question skips the planner call even when its answer was not cached
(e.g. a different tenant, or an answer that was flagged).

The planner's request handler reads the plan's key in its first round trip, with the stored outcome and the Cancel
mark (`PlanRead`, moe_core.stage.resources.Outcomes.once `also`): the route then needs no GET of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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

    def read(self, mode: str, question: str) -> PlanRead:
        """The read of `question`'s plan, to queue in another round trip (`PlanRead.queue`)."""
        return PlanRead(self.key(mode, question))

    async def get(self, mode: str, question: str, read: PlanRead | None = None) -> CachedPlan | None:
        """The cached plan; from `read` when it was read for this key already, else one GET."""
        key = self.key(mode, question)
        raw = read.raw if read is not None and read.done and read.key == key else await self.redis.get(key)
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


class PlanRead:
    """One request's plan-cache read, queued on a pipeline the handler sends anyway (`queue`: what takes its reply);
    `done` once the reply came."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.raw: Any = None
        self.done = False

    def queue(self, pipe: Any) -> Callable[[list[Any]], None]:
        pipe.get(self.key)

        def take(replies: list[Any]) -> None:
            self.raw, self.done = replies[0], True
        return take
