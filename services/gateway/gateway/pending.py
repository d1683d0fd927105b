"""Requests this replica is waiting on; replies from the bus are routed here by response_id."""

from __future__ import annotations

import asyncio
from typing import TypeAlias

from moe_core.contracts import Answer, AnswerDelta, Progress
from moe_core.runtime.observability.metrics import GATEWAY_PENDING

Event: TypeAlias = Answer | Progress | AnswerDelta


class Pending:
    def __init__(self) -> None:
        self._queues: dict[str, asyncio.Queue[Event]] = {}
        # requests answered here (an exact repeat): their Answer, published for the record, comes back on `answers`
        # and is dropped unread (issue 52: its parse, handling and second feedback record cost ~13 % of the gateway's
        # CPU per hit, tests.infra.gateway.gateway_load --profile)
        self._local: set[str] = set()

    def open(self, rid: str) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._queues[rid] = queue
        GATEWAY_PENDING.set(len(self._queues))
        return queue

    def close(self, rid: str) -> None:
        self._queues.pop(rid, None)
        self._local.discard(rid)
        GATEWAY_PENDING.set(len(self._queues))

    def answered_here(self, rid: str) -> None:
        """The open request `rid` is answered by this replica itself: nothing from the bus is waited for."""
        self._local.add(rid)

    def is_open(self, rid: str) -> bool:
        """Whether this replica waits for the bus's events of `rid`."""
        return rid in self._queues and rid not in self._local

    async def deliver(self, event: Event) -> None:
        queue = self._queues.get(event.response_id)
        if queue is not None:
            queue.put_nowait(event)
