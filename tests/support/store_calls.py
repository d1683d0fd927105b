"""Calls to the stores this process has made, as moe_store_seconds counts them (one Redis command or pipeline,
one Chroma HTTP request, one Neo4j query): round trips counted, not timed, so a test holds on a busy machine."""

from __future__ import annotations

from moe_core.runtime.observability.metrics import STORE_SECONDS


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
