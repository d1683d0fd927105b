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

    def open(self, rid: str) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._queues[rid] = queue
        GATEWAY_PENDING.set(len(self._queues))
        return queue

    def close(self, rid: str) -> None:
        self._queues.pop(rid, None)
        GATEWAY_PENDING.set(len(self._queues))

    def is_open(self, rid: str) -> bool:
        return rid in self._queues

    async def deliver(self, event: Event) -> None:
        queue = self._queues.get(event.response_id)
        if queue is not None:
            queue.put_nowait(event)
