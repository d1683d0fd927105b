"""A store's circuit breaker (moe_core.stage.breaker): an outage marks the store down and fails the task with the
reason; while down, tasks fail at once without touching the store; a background probe marks it up again; the state
is moe_store_up and /ready's check names the reason. Errors that are not the store's outage pass through."""

from __future__ import annotations

import asyncio

import pytest

from moe_core.runtime.observability.metrics import REGISTRY
from moe_core.stage.breaker import Breaker, StoreDown, guarded

pytestmark = pytest.mark.unit


class Outage(ConnectionError):
    pass


class Store:
    """A store that is out until told otherwise; counts the calls that reached it."""

    def __init__(self) -> None:
        self.out, self.calls = True, 0

    async def query(self) -> str:
        self.calls += 1
        if self.out:
            raise Outage("connection refused")
        return "context"

    async def ping(self) -> None:
        if self.out:
            raise Outage("still refused")


def _up(store: str) -> float | None:
    return REGISTRY.get_sample_value("moe_store_up", {"service": "unit", "store": store})


async def _until_up(breaker: Breaker) -> None:
    while breaker.reason is not None:  # the pytest timeout bounds it
        await asyncio.sleep(0.01)


async def test_an_outage_fails_tasks_at_once_until_the_probe_sees_the_store_back() -> None:
    store = Store()
    breaker = Breaker("unit", "graphstore", store.ping, (Outage,), interval_s=0.01)
    breakers = {"graphstore": breaker}
    assert _up("graphstore") == 1
    first = await guarded(breakers, store.query, lambda down: f"failed: {down}")
    assert first == "failed: graphstore unavailable: Outage: connection refused" and store.calls == 1
    assert _up("graphstore") == 0
    with pytest.raises(StoreDown, match="graphstore unavailable"):
        await breaker.ready()  # /ready names the store and why, without waiting for it
    second = await guarded(breakers, store.query, lambda down: f"failed: {down.store}")
    assert second == "failed: graphstore" and store.calls == 1  # failed at once: the store was not asked
    store.out = False
    await _until_up(breaker)
    assert _up("graphstore") == 1
    assert await guarded(breakers, store.query, lambda down: "failed") == "context" and store.calls == 2
    await breaker.ready()
    await breaker.close()


async def test_an_error_that_is_not_an_outage_is_the_tasks_own() -> None:
    store = Store()
    breaker = Breaker("unit", "other", store.ping, (Outage,), interval_s=0.01)

    async def wrong() -> str:
        raise ValueError("bad filter")

    with pytest.raises(ValueError, match="bad filter"):
        await guarded({"other": breaker}, wrong, lambda down: "failed")
    assert breaker.reason is None and _up("other") == 1
    with pytest.raises(StoreDown, match="other unavailable: Outage: still refused"):
        await breaker.ready()  # /ready's ping meeting the outage marks the store down
    assert _up("other") == 0
    await breaker.close()
