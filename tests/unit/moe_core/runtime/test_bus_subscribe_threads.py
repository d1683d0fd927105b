"""Bus.subscribe (the edge's replies, every stage's Cancel) hands each record to its handler on the event loop: no
call in a worker thread per record (FastStream's Context("message") was resolved by fast_depends with a sync call
in a worker thread: python -m bench.subscribe_costs)."""

from __future__ import annotations

import pytest
from faststream.kafka import TestKafkaBroker

from moe_core.contracts import Cancel, deadline_in
from tests.support.thread_hops import cancel_subscription, thread_hops

pytestmark = pytest.mark.unit


async def test_a_subscribed_record_is_handled_without_a_thread_hop() -> None:
    bus, got = cancel_subscription("subscribe-threads")
    with thread_hops() as threaded:
        async with TestKafkaBroker(bus.broker):
            for reason in ("client_disconnected", "deadline"):
                await bus.publish(Cancel(response_id="a" * 32, tenant_id="t", deadline_at=deadline_in(60),
                                         reason=reason), bus.topics.cancel)
    assert [c.reason for c in got] == ["client_disconnected", "deadline"]  # parsed into the model, in order
    assert threaded == []
