"""The edge's half of feedback: when this replica receives an Answer it is waiting for, it records the
answer's owner (tenant) and what a rating needs (moe_core.answer_records) in Redis with a TTL, before the
client sees the answer. The rating itself (POST /v1/feedback) is the control plane's."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from moe_core.answer_records import AnswerRecords
from moe_core.contracts import Answer

log = logging.getLogger(__name__)


class AnswerRecorder:
    def __init__(self, redis: Redis, namespace: str, window_s: int) -> None:
        self.records = AnswerRecords(redis, namespace, window_s)

    async def record_quietly(self, answer: Answer) -> None:
        try:
            await self.records.record(answer)
        except (RedisError, OSError) as exc:  # the answer matters more than its later rating
            log.warning("answer %s not recorded for feedback: %s", answer.response_id, exc)

    def recording(self, deliver: Callable[[Any], Awaitable[None]],
                  waiting: Callable[[str], bool]) -> Callable[[Answer], Awaitable[None]]:
        """Wrap the answers subscriber: record the answers this replica waits for, then hand them on."""
        async def on_answer(answer: Answer) -> None:
            if waiting(answer.response_id):
                await self.record_quietly(answer)
            await deliver(answer)
        return on_answer
