"""Bus.subscribe (the edge's replies, every stage's Cancel) hands each record to its handler on the event loop: no
call in a worker thread per record (FastStream's Context("message") was resolved by fast_depends with a sync call
in a worker thread: python -m bench.subscribe_costs)."""

from __future__ import annotations

from typing import Any

import fast_depends.utils
import pytest
from faststream.kafka import TestKafkaBroker

from moe_core.bus import Bus
from moe_core.contracts import Cancel, deadline_in
from moe_core.settings import FleetSettings

pytestmark = pytest.mark.unit


async def test_a_subscribed_record_is_handled_without_a_thread_hop(monkeypatch: pytest.MonkeyPatch) -> None:
    threaded: list[Any] = []
    original = fast_depends.utils.run_in_threadpool

    async def counting(func: Any, *args: Any, **kwargs: Any) -> Any:
        threaded.append(func)
        return await original(func, *args, **kwargs)

    monkeypatch.setattr(fast_depends.utils, "run_in_threadpool", counting)
    bus = Bus(FleetSettings(topic_namespace="subscribe-threads"))
    got: list[Cancel] = []

    async def handle(cancel: Cancel) -> None:
        got.append(cancel)

    bus.subscribe(bus.topics.cancel, Cancel, handle, group=False)
    async with TestKafkaBroker(bus.broker):
        for reason in ("client_disconnected", "deadline"):
            await bus.publish(Cancel(response_id="a" * 32, tenant_id="t", deadline_at=deadline_in(60), reason=reason),
                              bus.topics.cancel)
    assert [c.reason for c in got] == ["client_disconnected", "deadline"]  # parsed into the model, in order
    assert threaded == []
