"""The edge's half of feedback: when this replica receives an Answer it is waiting for, it records the
answer's owner (tenant) and what a rating needs (moe_core.llm.answer_records) in Redis with a TTL, before the
client sees the answer — in the round trip of the settlement's claim when this replica settles the request
(gateway.metering), else on its own. The rating itself (POST /v1/feedback) is the control plane's."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from moe_core.access.settlement import Write
from moe_core.contracts import Answer
from moe_core.llm.answer_records import AnswerRecords

if TYPE_CHECKING:
    from gateway.metering import Metering

log = logging.getLogger(__name__)


class AnswerRecorder:
    def __init__(self, redis: Redis, namespace: str, window_s: int) -> None:
        self.records = AnswerRecords(redis, namespace, window_s)

    async def record_quietly(self, answer: Answer) -> None:
        try:
            await self.records.record(answer)
        except (RedisError, OSError) as exc:  # the answer matters more than its later rating
            log.warning("answer %s not recorded for feedback: %s", answer.response_id, exc)

    def recording(self, metering: Metering, deliver: Callable[[Any], Awaitable[None]],
                  waiting: Callable[[str], bool]) -> Callable[[Answer], Awaitable[None]]:
        """The answers subscriber: an Answer this replica waits for is recorded and its usage settled (the record
        in the claim's round trip when this replica settles it), then handed on."""
        async def on_answer(answer: Answer) -> None:
            write = None
            if waiting(answer.response_id):
                key, value = self.records.entry(answer)
                write = Write(key, value, self.records.ttl_s)
            settled, recorded = await metering.settle_recording(answer, write)
            if write is not None and not recorded:  # not metered here, or the claim failed: on its own
                await self.record_quietly(answer)
            await deliver(settled)
        return on_answer
