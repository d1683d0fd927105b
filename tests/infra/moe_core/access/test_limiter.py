"""The limiter's Lua scripts in real Redis (atomic reservations under concurrency, settlement, key and
tenant scopes) and its windows, limits and prices."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from redis.asyncio import Redis

from moe_core.access.limits import Limiter, LimitExceeded, Limits, ModelPrice, windows

pytestmark = pytest.mark.infra


async def test_concurrent_reservations_never_exceed_the_budget(redis: Redis, namespace: str) -> None:
    limiter = Limiter(redis, namespace)
    counters = limiter.counters([("key", "k1", Limits(tokens_per_day=95)), ("tenant", "t1", Limits())], priced=False)

    async def one() -> bool:
        try:
            await limiter.reserve(counters, want=10, least=10, micros_per_token=0.0)
        except LimitExceeded as exc:
            assert (exc.scope, exc.limit, exc.status) == ("key", "tokens_per_day", 429)
            return False
        return True

    admitted = await asyncio.gather(*(one() for _ in range(50)))
    assert sum(admitted) == 9
    used = await limiter.used("key", "k1")
    assert (used["tokens_per_day"], used["requests_per_minute"], used["cost_per_day"]) == (90, 9, 0)
    assert (await limiter.used("tenant", "t1"))["tokens_per_day"] == 90  # counted for the tenant too


async def test_settlement_replaces_the_reservation_and_frees_room(redis: Redis, namespace: str) -> None:
    limiter = Limiter(redis, namespace)
    counters = limiter.counters([("key", "k", Limits()), ("tenant", "t", Limits(tokens_per_minute=100))],
                                priced=True)
    held = await limiter.reserve(counters, want=80, least=80, micros_per_token=6.25)  # 500 micros
    with pytest.raises(LimitExceeded) as refused:
        await limiter.reserve(counters, want=30, least=30, micros_per_token=0.0)
    assert refused.value.scope == "tenant" and 1 <= refused.value.retry_after_s <= 60
    await limiter.settle(held, tokens=12, cost_micros=70)
    await limiter.settle(held, tokens=0, cost_micros=0)  # settled once only
    used = await limiter.used("tenant", "t")
    assert (used["tokens_per_minute"], used["cost_per_month"], used["requests_per_minute"]) == (12, 0.00007, 1)
    given_back = await limiter.reserve(counters, want=30, least=30, micros_per_token=0.0)
    await limiter.settle(given_back, 0, 0, requests=0)  # a request that never entered the fleet
    assert (await limiter.used("tenant", "t"))["requests_per_minute"] == 1
    assert 0 < await redis.ttl(counters[0].key) <= 120


async def test_a_reservation_takes_the_room_left_but_never_less_than_its_least(redis: Redis, namespace: str) -> None:
    limiter = Limiter(redis, namespace)
    counters = limiter.counters([("key", "k", Limits(tokens_per_day=100)), ("tenant", "t", Limits())], priced=False)
    first = await limiter.reserve(counters, want=70, least=10, micros_per_token=0.0)
    second = await limiter.reserve(counters, want=70, least=10, micros_per_token=0.0)
    assert (first.tokens, second.tokens) == (70, 30)  # the second gets what is left
    with pytest.raises(LimitExceeded):
        await limiter.reserve(counters, want=70, least=1, micros_per_token=0.0)
    assert (await limiter.used("key", "k"))["tokens_per_day"] == 100


def test_windows_and_retry_after() -> None:
    found = windows(datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC))
    assert (found["minute"].retry_after_s, found["day"].retry_after_s, found["month"].retry_after_s) == (30, 30, 30)
    assert (found["day"].label, found["month"].label) == ("20261231", "202612")
    assert windows(datetime(2026, 2, 1, tzinfo=UTC))["month"].retry_after_s == 28 * 86400


@pytest.mark.parametrize("bad", [{"requests_per_minute": -1}, {"tokens_per_day": 10**14}, {"cost_per_day": 1e10},
                                 {"tokens_per_week": 1}, {"tokens_per_minute": "lots"}])
def test_negative_absurd_and_unknown_limits_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Limits.model_validate(bad)


def test_prices_are_per_million_tokens_rounded_up() -> None:
    assert ModelPrice(input=3.0, output=15.0).micros(1000, 100) == 4500  # 0.0045
    assert ModelPrice(input=0.1, output=0).micros(1, 0) == 1
