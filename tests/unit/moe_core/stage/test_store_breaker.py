"""A store's circuit breaker (moe_core.stage.breaker): an outage marks the store down and fails the task with the
reason; while down, tasks fail at once without touching the store; a background probe marks it up again; the state
is moe_store_up and /ready's check names the reason. Errors that are not the store's outage pass through."""

from __future__ import annotations

import asyncio
import contextlib

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


class Flaky(Store):
    """A store whose client misbehaves while it is out: its ping hangs, or raises a CancelledError of the client's
    own clean-up (the neo4j driver re-raises one from a cancelled reset), before the store comes back."""

    def __init__(self, misbehaviour: str) -> None:
        super().__init__()
        self.misbehaviour, self.pings = misbehaviour, 0

    async def ping(self) -> None:
        self.pings += 1
        if self.out and self.misbehaviour == "hangs":
            await asyncio.Event().wait()  # no answer, ever
        if self.out and self.misbehaviour == "stray-cancel":
            raise asyncio.CancelledError("cancelled reset connection")
        await super().ping()


@pytest.mark.parametrize("misbehaviour", ["hangs", "stray-cancel"])
async def test_the_breaker_closes_within_a_few_probe_intervals_once_the_store_is_back(misbehaviour: str) -> None:
    """The chaos tier's failure (the breaker stayed down after Neo4j came back): whatever the outage did to the
    client's ping, the probe keeps trying, and once the store answers the breaker closes within a bounded number of
    probe intervals and the next task reaches the store again."""
    store = Flaky(misbehaviour)
    breaker = Breaker("unit", f"flaky-{misbehaviour}", store.ping, (Outage,), interval_s=0.01, timeout_s=0.05)
    breakers = {"flaky": breaker}
    assert await guarded(breakers, store.query, lambda down: "failed") == "failed"
    for _ in range(500):  # the probe meets the misbehaving ping a few times (at most 5 s: a stuck probe fails here)
        if store.pings >= 3:
            break
        await asyncio.sleep(0.01)
    assert store.pings >= 3, f"the probe is stuck after {store.pings} pings"
    assert breaker.reason is not None and _up(f"flaky-{misbehaviour}") == 0
    store.out = False
    pings_when_back = store.pings
    for _ in range(500):
        if breaker.reason is None or store.pings >= pings_when_back + 20:
            break
        await asyncio.sleep(0.01)
    assert breaker.reason is None, f"still down {store.pings - pings_when_back} probes after the store came back"
    assert _up(f"flaky-{misbehaviour}") == 1
    assert await guarded(breakers, store.query, lambda down: "failed") == "context"
    await breaker.close()


async def test_a_probe_that_ended_is_started_again_by_the_next_check() -> None:
    store = Store()
    breaker = Breaker("unit", "restarted", store.ping, (Outage,), interval_s=0.01)
    await guarded({"restarted": breaker}, store.query, lambda down: "failed")
    assert breaker._probing is not None
    breaker._probing.cancel()  # e.g. killed by something outside the breaker
    with contextlib.suppress(asyncio.CancelledError):
        await breaker._probing
    store.out = False
    assert await guarded({"restarted": breaker}, store.query, lambda down: "failed") == "failed"  # still marked down
    for _ in range(500):  # ... and probed again: it closes
        if breaker.reason is None:
            break
        await asyncio.sleep(0.01)
    assert breaker.reason is None, "no probe ran after the first one ended"
    assert await guarded({"restarted": breaker}, store.query, lambda down: "failed") == "context"
    await breaker.close()
