"""One request's progress, deltas and answers read back from their topics (a resumed stream's source).

The records are fed to a RequestRun's queue, first in the interleaving a stream id's path names (so the
renderer arrives at the state the client saw), then as they come, the Answer last. Every record of a
request is keyed by its response_id: one partition per topic (the producers' murmur2 partitioner), read
from `lookback_s` before the request was created (broker time; clock skew between hosts). Past the deadline
only what the topics hold now is read (`read_published`). A record read back counts only with the signature of a
declared producer of its topic, as a live one (moe_core.runtime.producer_signing; refused: counted and
dead-lettered, never shown): progress, deltas and the Answer alike.
Reading a key's partitions back is moe_core.runtime.topic_reads (the control plane's settle sweeper reads Answers
with it too).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from gateway.pending import Event
from gateway.stream_ids import Position
from moe_core.contracts import Answer, AnswerDelta, ChatRequest, Progress, Topics
from moe_core.runtime.settings import FleetSettings
from moe_core.runtime.topic_reads import behind, keyed_consumer, partitions_of, seek_since

log = logging.getLogger(__name__)


class Replay:
    def __init__(self, settings: FleetSettings, request: ChatRequest, after: Position, queue: asyncio.Queue[Event],
                 *, lookback_s: float, linger_s: float,
                 on_answer: Callable[[Answer], Awaitable[Answer]] | None = None,
                 proven: Callable[[Any, str], Awaitable[bool]] | None = None) -> None:
        """on_answer: what happens to the Answer before the renderer gets it (settled, recorded); the Answer
        it returns is rendered. proven: whether a declared producer signed a record read back (Bus.proven_record:
        a record counts only then, as a live one does; a refused one is counted and dead-lettered, never shown)."""
        self.settings = settings
        self.request = request
        self.queue = queue
        self.lookback_s = lookback_s
        self.linger_s = linger_s
        self.on_answer = on_answer
        self.proven = proven
        topics = Topics.for_namespace(settings.topic_namespace)
        self.sources: dict[str, tuple[str, type[Event]]] = {
            topics.progress: ("p", Progress), topics.deltas: ("d", AnswerDelta), topics.answers: ("a", Answer)}
        self.path = list(after.path)  # (kind, count) runs still to feed in this order
        self.waiting: dict[str, deque[Event]] = {"p": deque(), "d": deque(), "a": deque()}
        self.answered = False
        self.ends: dict[TopicPartition, int] = {}
        self._consumer: AIOKafkaConsumer | None = None  # positioned by `seen`, read on by `run`

    async def seen(self, timeout_s: float) -> bool:
        """Whether every event the position names is on the topics: each was published before the client saw
        it, so an id naming more was never sent. Reads until they are all fed, `timeout_s` at most (an exact
        repeat's Answer is published just after its reply); the consumer is kept for `run`."""
        consumer = await self._started()
        try:
            async with asyncio.timeout(timeout_s):
                while self.path:
                    await self._take(await consumer.getmany(timeout_ms=200))
        except TimeoutError:
            pass
        except BaseException:
            await consumer.stop()
            raise
        if self.path:
            await consumer.stop()
            return False
        self._consumer = consumer
        return True

    async def run(self) -> None:
        """Read until the Answer was fed, or `linger_s` past the deadline (cancelled when the connection ends)."""
        consumer, self._consumer = self._consumer, None
        consumer = consumer or await self._started()
        try:
            while not self.answered and self.request.remaining_seconds() > -self.linger_s:
                await self._take(await consumer.getmany(timeout_ms=1000))
        finally:
            await consumer.stop()

    async def close(self) -> None:
        """Stop a consumer `seen` kept when `run` will not."""
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()

    async def _take(self, batch: dict[TopicPartition, list[Any]]) -> None:
        """This request's records of one fetch, then what they complete fed on."""
        key = self.request.response_id.encode()
        for records in batch.values():
            for record in records:
                if record.key == key and record.value is not None and await self._signed(record):
                    self._arrived(record.topic, record.value)
        await self._feed()

    async def _signed(self, record: Any) -> bool:
        """A record read back is checked like a live one (the edge's consumers are `signed`, gateway.declaration)."""
        return self.proven is None or await self.proven(record, record.topic)

    async def _started(self) -> AIOKafkaConsumer:
        """A started consumer on this request's partitions, positioned `lookback_s` before it was created."""
        consumer = keyed_consumer(self.settings)
        await consumer.start()
        try:
            await self._position(consumer)
        except BaseException:
            await consumer.stop()
            raise
        return consumer

    async def _position(self, consumer: AIOKafkaConsumer) -> None:
        found = await partitions_of(self.settings, list(self.sources), [self.request.response_id])
        parts = [TopicPartition(topic, found[topic][self.request.response_id]) for topic in self.sources]
        consumer.assign(parts)
        self.ends = await seek_since(consumer, {tp: self.request.created_at.timestamp() - self.lookback_s
                                                for tp in parts})

    async def read_published(self, timeout_s: float) -> None:
        """Past the deadline: feed what the topics hold now (up to their current ends), without waiting for
        more; `answered` tells whether the Answer was among it."""
        consumer = await self._started()
        try:
            async with asyncio.timeout(timeout_s):
                while not self.answered and await behind(consumer, self.ends):
                    await self._take(await consumer.getmany(timeout_ms=500))
        finally:
            await consumer.stop()

    def _arrived(self, topic: str, value: bytes) -> None:
        kind, model = self.sources[topic]
        try:
            event = model.model_validate_json(value)
        except ValidationError:  # dead-lettered by the live subscriber too: never shown
            log.warning("skipping an invalid %s record", model.__name__)
            return
        if event.response_id == self.request.response_id:
            self.waiting[kind].append(event)

    async def _feed(self) -> None:
        while self.path:  # the client's interleaving first
            kind, left = self.path[0]
            if not self.waiting[kind]:
                return
            await self._put(self.waiting[kind].popleft())
            if left == 1:
                self.path.pop(0)
            else:
                self.path[0] = (kind, left - 1)
        for kind in ("p", "d", "a"):  # then whatever came, the Answer last
            while self.waiting[kind] and not self.answered:
                await self._put(self.waiting[kind].popleft())

    async def _put(self, event: Event) -> None:
        if isinstance(event, Answer):
            self.answered = True
            if self.on_answer is not None:
                event = await self.on_answer(event)
        self.queue.put_nowait(event)
