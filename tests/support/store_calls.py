"""Calls to the stores this process has made, as moe_store_seconds counts them (one Redis command or pipeline,
one Chroma HTTP request, one Neo4j query): round trips counted, not timed, so a test holds on a busy machine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from moe_core.runtime.observability.metrics import STORE_SECONDS
from moe_core.runtime.observability.stores import calls_here


def store_ops(store: str) -> dict[str, float]:
    """Calls to `store` so far, by operation."""
    return {s.labels["op"]: s.value for m in STORE_SECONDS.collect() for s in m.samples
            if s.name.endswith("_count") and s.labels.get("store") == store}


def store_calls(store: str, op: str | None = None) -> float:
    """Calls to `store` so far (of one operation, or all)."""
    ops = store_ops(store)
    return ops.get(op, 0.0) if op is not None else sum(ops.values())


def redis_round_trips() -> float:
    """Redis round trips so far (a pipeline is one)."""
    return store_calls("redis")


@contextmanager
def own_ops(store: str) -> Iterator[dict[str, int]]:
    """Calls to `store` made inside the block by this task and the tasks it starts, by operation (filled when the
    block ends): a background task of an earlier test (a stage's inference heartbeat) is not counted."""
    ops: dict[str, int] = {}
    with calls_here() as calls:
        yield ops
    ops.update({op: n for (where, op), n in calls.items() if where == store})
