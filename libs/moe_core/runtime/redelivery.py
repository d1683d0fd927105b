"""What a consumer does with a message its handler failed on for a broker-ish reason.

- The broker refuses a message for its size (MessageSizeTooLargeError, RecordTooLargeError): retrying
  cannot help, so the input is dead-lettered with the reason and the partition moves on.
- A transient failure (broker, Redis, network): the record is redelivered after an exponential backoff
  (MOE_RETRY_BASE_S doubling per attempt, at most MOE_RETRY_CAP_S); after MOE_RETRY_MAX_ATTEMPTS attempts
  it is dead-lettered with the last error, so one record never blocks its partition for ever.
Attempts are counted per record (topic, partition, offset) in this process: a record redelivered to
another replica after a rebalance starts again from one, which only ever adds attempts, never loses one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.errors import MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError

log = logging.getLogger(__name__)
TOO_LARGE_ERRORS: tuple[type[BaseException], ...] = (MessageSizeTooLargeError, RecordTooLargeError,
                                                     RecordListTooLargeError)
DeadLetter = Callable[[Any, str, str], Awaitable[None]]


class Redelivery:
    def __init__(self, base_s: float, cap_s: float, max_attempts: int, remember: int = 10_000) -> None:
        self.base_s, self.cap_s, self.max_attempts = base_s, cap_s, max_attempts
        self._attempts: OrderedDict[tuple[Any, Any, Any], int] = OrderedDict()
        self._remember = remember

    def delay(self, attempt: int) -> float:
        """The pause after the `attempt`-th failure (1-based)."""
        return float(min(self.cap_s, self.base_s * 2 ** (attempt - 1)))

    async def redeliver(self, msg: Any, exc: BaseException, dead_letter: DeadLetter) -> bool:
        """The handler failed on `msg` with `exc` (a Kafka, Redis or network error). True: it paused with
        backoff and the caller re-raises so the record is redelivered. False: it was dead-lettered."""
        key = _record(msg)
        if isinstance(exc, TOO_LARGE_ERRORS):
            self._attempts.pop(key, None)
            await dead_letter(msg, f"{type(exc).__name__}: {exc} (a message the broker refuses for its size; "
                                   "not retried)", "message_too_large")
            return False
        attempt = self._attempts.pop(key, 0) + 1
        if attempt >= self.max_attempts:
            await dead_letter(msg, f"transient failure, {attempt} attempts: {type(exc).__name__}: {exc}",
                              "retries_exhausted")
            return False
        self._attempts[key] = attempt
        while len(self._attempts) > self._remember:
            self._attempts.popitem(last=False)
        delay = self.delay(attempt)
        log.warning("transient failure (attempt %d of %d), redelivered in %.2f s: %s", attempt,
                    self.max_attempts, delay, exc)
        await asyncio.sleep(delay)
        return True

    def done(self, msg: Any) -> None:
        """The record was handled: forget its attempts."""
        if self._attempts:
            self._attempts.pop(_record(msg), None)


def _record(msg: Any) -> tuple[Any, Any, Any]:
    raw = getattr(msg, "raw_message", None)
    return getattr(raw, "topic", None), getattr(raw, "partition", None), getattr(raw, "offset", None)
