"""The checks after a Chroma upsert (planner.cache_writes.SharedChecks) against the real Redis: the writers
of one batch, resuming together, share one round trip; each gets its own entry's early flag, its pending entry is
deleted, and one writer only is told the hour's sweep is due (issue 52: one pipeline per entry before)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from planner.cache_writes import SharedChecks
from tests.support.counting_redis import CountingRedis

pytestmark = pytest.mark.infra


async def test_the_writers_of_a_batch_ask_in_one_round_trip(counting: CountingRedis) -> None:
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    sweep, flags = f"planner:cache-sweep:{namespace}", f"planner:cacheflag:{namespace}"
    pending = f"planner:cachectx:{namespace}"
    await counting.set(f"{flags}:k2", "t-1", ex=60)  # k2 was rated before it was stored
    for key in ("k1", "k2", "k3", "k4"):
        await counting.set(f"{pending}:{key}", "{}", ex=60)
    checks = SharedChecks(counting, sweep, flags, pending)
    counting.counts[0] = 0
    try:
        answers = await asyncio.gather(*(checks.ask(key) for key in ("k1", "k2", "k3", "k2")))
        assert counting.counts[0] == 1
        assert answers == [(True, None), (False, "t-1"), (False, None), (False, "t-1")]
        assert await checks.ask("k3") == (False, None)  # the hour's sweep is taken: not due again
        assert counting.counts[0] == 2
        # the writers' pending entries are done with (a redelivered answer is not stored again); k4's stays
        assert [await counting.exists(f"{pending}:{k}") for k in ("k1", "k2", "k3", "k4")] == [0, 0, 0, 1]
    finally:
        await counting.delete(sweep, f"{flags}:k2", f"{pending}:k4")
