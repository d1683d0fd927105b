"""The `usage` topic's consumer: each settled request's charge (UsageCharged, published by the edge's
gateway.metering) written as its row of usage_requests and added to its day's row of usage_daily, in one
statement, once per response id — a charge delivered again (a redelivery, or the sweeper repeating a settler
that died after publishing) changes nothing. Nothing is lost: the consumer group commits after the write; a
message that is not a UsageCharged, or a write Postgres refuses, goes to the dead-letter topic with the reason
(moe_core.bus); Postgres unreachable is transient (redelivered with backoff)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import asyncpg

from moe_core.access.usage_store import UsageStore
from moe_core.contracts import UsageCharged

log = logging.getLogger(__name__)
# Postgres not reachable now (down, restarting, out of connections): the charge is redelivered, not dead-lettered
UNAVAILABLE = (asyncpg.PostgresConnectionError, asyncpg.exceptions.OperatorInterventionError,
               asyncpg.exceptions.InsufficientResourcesError, asyncpg.InterfaceError)


class UsageRecorder:
    def __init__(self, store: Callable[[], Awaitable[UsageStore]]) -> None:
        """store: the usage store once it is open (control_plane.app waits for its start-up)."""
        self.store = store

    async def record(self, charge: UsageCharged) -> bool:
        """Write one charge; False if its response id was recorded before."""
        store = await self.store()
        try:
            added = await store.record(
                tenant_id=charge.tenant_id, key_id=charge.key_id, mode=charge.mode, model=charge.model, requests=1,
                prompt_tokens=charge.prompt_tokens, completion_tokens=charge.completion_tokens,
                cost_micros=charge.cost_micros, response_id=charge.response_id, outcome=charge.outcome,
                settled_by=charge.settled_by, day=charge.created_at.date())
        except UNAVAILABLE as exc:
            raise ConnectionError(f"usage of {charge.response_id} not written now: {exc}") from exc
        if not added:
            log.info("usage of %s was recorded before", charge.response_id)
        return added

    async def handle(self, charge: UsageCharged) -> None:
        """The subscriber's handler (control_plane.declaration)."""
        await self.record(charge)
