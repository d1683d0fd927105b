"""A service's start-up steps: a transient failure is retried within the budget; anything else stops the start."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import TopicAuthorizationFailedError

from moe_core.knowledge.graph.driver import GraphUnavailable
from moe_core.runtime.service import started

pytestmark = pytest.mark.unit


class Flaky:
    def __init__(self, failures: list[BaseException]) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)


def test_transient_failures_are_retried_until_the_step_succeeds() -> None:
    step = Flaky([GraphUnavailable("deadlock"), ConnectionRefusedError("not yet"), TimeoutError()])
    asyncio.run(started(step, retry_s=30, what="graph", first_delay_s=0.001))
    assert step.calls == 4


def test_a_transient_failure_past_the_budget_is_raised() -> None:
    step = Flaky([GraphUnavailable("down")] * 100)
    with pytest.raises(GraphUnavailable):
        asyncio.run(started(step, retry_s=0, what="graph", first_delay_s=0.001))
    assert step.calls == 1


@pytest.mark.parametrize("error", [ValueError("bad settings"), TopicAuthorizationFailedError()])
def test_a_lasting_failure_stops_the_start_at_once(error: BaseException) -> None:
    step = Flaky([error])
    with pytest.raises(type(error)):
        asyncio.run(started(step, retry_s=30, what="x", first_delay_s=0.001))
    assert step.calls == 1
