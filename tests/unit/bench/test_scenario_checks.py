"""The bench's Kafka check of a full request: a judge call after the planner and every expert, whether or not the
merger's thinking step ran (it runs only where there is something to weigh) and whatever the graph task did."""

from __future__ import annotations

from typing import Any

import pytest

from bench.scenarios import kafka_full

pytestmark = pytest.mark.unit


def _trace(model_calls: int, experts: int = 2, graph: bool = True) -> dict[str, Any]:
    tasks = experts + (1 if graph else 0)
    return {"plan": {"source": "llm", "tasks": tasks, "experts": experts},
            "answer": {"cache_hit": False, "model_calls": model_calls}}


def test_a_full_request_needs_the_planner_the_experts_and_the_judge() -> None:
    assert kafka_full(_trace(4)) is None  # planner, two experts, judge: no thinking step
    assert kafka_full(_trace(5)) is None  # with the thinking step
    assert "expected a judge call" in str(kafka_full(_trace(3)))  # the fast path: no judge
    assert kafka_full(_trace(4, graph=False)) is None


def test_a_trace_without_the_expert_count_counts_every_task() -> None:
    trace = _trace(4)
    del trace["plan"]["experts"]
    assert "expected a judge call" in str(kafka_full(trace))
    assert kafka_full(_trace(5) | {"plan": {"source": "llm", "tasks": 3}}) is None
