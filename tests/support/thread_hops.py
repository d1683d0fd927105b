"""What tests.unit.moe_core.runtime.test_bus_subscribe_threads and bench.subscribe_costs share: the calls
fast_depends runs in a worker thread, counted, and a bus with one Cancel subscription that keeps what its handler
got."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import fast_depends.utils

from moe_core.contracts import Cancel
from moe_core.runtime.bus import Bus
from moe_core.runtime.settings import FleetSettings


@contextmanager
def thread_hops() -> Iterator[list[Any]]:
    """The functions fast_depends runs in its thread pool while the context is open."""
    calls: list[Any] = []
    original = fast_depends.utils.run_in_threadpool

    async def counting(func: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(func)
        return await original(func, *args, **kwargs)

    setattr(fast_depends.utils, "run_in_threadpool", counting)  # noqa: B010 - counted, then put back
    try:
        yield calls
    finally:
        setattr(fast_depends.utils, "run_in_threadpool", original)  # noqa: B010


def cancel_subscription(namespace: str) -> tuple[Bus, list[Cancel]]:
    """A bus subscribed to its namespace's Cancel topic (Bus.subscribe, no group), and the list its handler fills."""
    bus = Bus(FleetSettings(topic_namespace=namespace))
    got: list[Cancel] = []

    async def handle(cancel: Cancel) -> None:
        got.append(cancel)

    bus.subscribe(bus.topics.cancel, Cancel, handle, group=False)
    return bus, got
