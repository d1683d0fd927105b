"""Every call the fleet makes to its stores is timed and counted (`moe_store_seconds{store, op}`), so the
benchmark can say how many Redis, Chroma and Neo4j round trips a request costs and how long they took.

Redis: `moe_core.runtime.stores.redis_client` builds a client whose commands and pipelines are timed here.
Neo4j: `moe_core.knowledge.graph.driver.GraphDB` times its queries with `store_call`.
Chroma: the HTTP client's one request method is wrapped once per process (`instrument_chroma`).
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from moe_core.runtime.observability.metrics import STORE_SECONDS

_CALLS: ContextVar[Counter[tuple[str, str]] | None] = ContextVar("moe_store_calls", default=None)


@contextmanager
def store_call(store: str, op: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        STORE_SECONDS.labels(store, op).observe(time.perf_counter() - started)
        if (calls := _CALLS.get()) is not None:
            calls[store, op] += 1


@contextmanager
def calls_here() -> Iterator[Counter[tuple[str, str]]]:
    """The store calls made from here on by this task and the tasks it starts, by (store, op): not those of
    tasks already running (another component's heartbeat), which the process-wide counts include."""
    calls: Counter[tuple[str, str]] = Counter()
    token = _CALLS.set(calls)
    try:
        yield calls
    finally:
        _CALLS.reset(token)


def instrument_chroma() -> None:
    """Time every HTTP request of Chroma's async client (op = the last path segment: query, upsert, ...)."""
    from chromadb.api.async_fastapi import AsyncFastAPI

    original = AsyncFastAPI._make_request
    if getattr(original, "_moe_timed", False):
        return

    @functools.wraps(original)
    async def timed(self: Any, method: str, path: str, **kwargs: Any) -> Any:
        op = path.rstrip("/").rsplit("/", 1)[-1] or "heartbeat"
        with store_call("chroma", op if not _looks_like_id(op) else method.lower()):
            return await original(self, method, path, **kwargs)

    timed._moe_timed = True  # type: ignore[attr-defined]
    AsyncFastAPI._make_request = timed  # type: ignore[method-assign]


def _looks_like_id(segment: str) -> bool:
    """A collection id or name at the end of the path (GET /collections/<id>): label by method instead."""
    return len(segment) > 24 or "-" in segment
