"""The `usage` topic's consumer: each settled request's charge (UsageCharged, published by the edge's
gateway.metering) written as its row of usage_requests and added to its day's row of usage_daily, in one
statement with the charges that arrive together (control_plane.usage.writes), once per response id — a charge
delivered again (a redelivery, or the sweeper repeating a settler that died after publishing) changes nothing.
Nothing is lost: the consumer group commits after the write; a message that is not a UsageCharged, or a write
Postgres refuses, goes to the dead-letter topic with the reason (moe_core.stage.consumer); Postgres unreachable
is transient (redelivered with backoff)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from control_plane.usage.writes import UNAVAILABLE, GroupWrites
from moe_core.access.usage_store import Charge, UsageStore
from moe_core.contracts import UsageCharged

log = logging.getLogger(__name__)


class UsageRecorder:
    def __init__(self, store: Callable[[], Awaitable[UsageStore]], linger_s: float = 0.0,
                 max_batch: int = 64) -> None:
        """store: the usage store once it is open (control_plane.app waits for its start-up); linger_s: how long a
        write waits for more charges to go out with it, up to max_batch (control_plane.usage.writes; at most the
        consumer's records in flight, or a full batch would wait out the linger)."""
        self.store = store
        self.writes = GroupWrites(max_batch=max_batch, linger_s=linger_s)

    async def record(self, charge: UsageCharged) -> bool:
        """Write one charge (with the others in flight: one statement); False if its response id was recorded
        before."""
        store = await self.store()
        try:
            added = await self.writes.record(store, Charge(
                response_id=charge.response_id, day=charge.created_at.date(), tenant_id=charge.tenant_id,
                key_id=charge.key_id, mode=charge.mode, model=charge.model, prompt_tokens=charge.prompt_tokens,
                completion_tokens=charge.completion_tokens, cost_micros=charge.cost_micros or 0,
                outcome=charge.outcome, settled_by=charge.settled_by))
        except UNAVAILABLE as exc:
            raise ConnectionError(f"usage of {charge.response_id} not written now: {exc}") from exc
        if not added:
            log.info("usage of %s was recorded before", charge.response_id)
        return added

    async def handle(self, charge: UsageCharged) -> None:
        """The subscriber's handler (control_plane.declaration)."""
        await self.record(charge)
