"""The requests a gateway replica waits on (gateway.pending): a request answered at the edge (an exact repeat) waits
for nothing from the bus, so its own Answer, published for the record, is dropped unread when it comes back on
`answers` (the subscriber's `wanted`), while its queue still hands the local answer to the client."""

from __future__ import annotations

import pytest

from gateway.pending import Pending
from moe_core.contracts import Answer, deadline_in

pytestmark = pytest.mark.unit


def _answer(rid: str) -> Answer:
    return Answer(response_id=rid, tenant_id="t", deadline_at=deadline_in(30), mode="moe-orchestrator", content="4")


async def test_a_request_answered_here_is_not_waited_for_on_the_bus() -> None:
    pending = Pending()
    fleet, local = pending.open("fleet"), pending.open("local")
    pending.answered_here("local")
    local.put_nowait(_answer("local"))  # as gateway.chat queues an exact repeat's answer

    assert pending.is_open("fleet") and not pending.is_open("local")
    await pending.deliver(_answer("fleet"))
    assert fleet.get_nowait().response_id == "fleet"
    assert local.get_nowait().response_id == "local" and local.empty()

    pending.close("local")  # forgotten: a later request with the same id (none is made) would be waited for
    pending.open("local")
    assert pending.is_open("local")
