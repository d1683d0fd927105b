"""A Redis client that counts its round trips (each command, a script call included, and each pipeline): what the
tests of the edge's metering assert (tests/infra/moe_core/access/test_edge_hit.py,
tests/infra/gateway/test_metering_round_trips.py; the fixture `counting` is tests/infra/conftest.py's)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline


class CountingPipeline(Pipeline):
    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        self.counts[0] += 1  # type: ignore[attr-defined]
        return await super().execute(raise_on_error)


class CountingRedis(Redis):
    """Counts round trips: each command (a script call is one EVALSHA) and each pipeline."""

    counts: list[int]

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.counts[0] += 1
        return await super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        pipe = CountingPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe.counts = self.counts  # type: ignore[attr-defined]
        return pipe


class OpsPipeline(Pipeline):
    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        self.ops["pipeline"] += 1  # type: ignore[attr-defined]
        return await super().execute(raise_on_error)


class OpsRedis(Redis):
    """Counts round trips by operation: each command by its name (a script call: `evalsha`), each pipeline as
    `pipeline` (tests/unit/merger/test_merger_round_trips.py, tests/unit/expert_worker/test_expert_round_trips.py)."""

    ops: Counter[str]

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.ops[str(args[0]).lower()] += 1
        return await super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        pipe = OpsPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe.ops = self.ops  # type: ignore[attr-defined]
        return pipe
