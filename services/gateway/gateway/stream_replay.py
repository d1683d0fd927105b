"""One request's progress, deltas and answers read back from their topics (a resumed stream's source).

The records are fed to a RequestRun's queue, first in the interleaving a stream id's path names (so the
renderer arrives at the state the client saw), then as they come, the Answer last. Every record of a
request is keyed by its response_id: one partition per topic (the producers' murmur2 partitioner), read
from `lookback_s` before the request was created (broker time; clock skew between hosts).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner
from pydantic import ValidationError

from gateway.pending import Event
from gateway.stream_ids import Position
from moe_core.contracts import Answer, AnswerDelta, ChatRequest, Progress, Topics
from moe_core.settings import FleetSettings

log = logging.getLogger(__name__)


class Replay:
    def __init__(self, settings: FleetSettings, request: ChatRequest, after: Position, queue: asyncio.Queue[Event],
                 *, lookback_s: float, linger_s: float,
                 on_answer: Callable[[Answer], Awaitable[None]] | None = None) -> None:
        self.settings = settings
        self.request = request
        self.queue = queue
        self.lookback_s = lookback_s
        self.linger_s = linger_s
        self.on_answer = on_answer
        topics = Topics.for_namespace(settings.topic_namespace)
        self.sources: dict[str, tuple[str, type[Event]]] = {
            topics.progress: ("p", Progress), topics.deltas: ("d", AnswerDelta), topics.answers: ("a", Answer)}
        self.path = list(after.path)  # (kind, count) runs still to feed in this order
        self.waiting: dict[str, deque[Event]] = {"p": deque(), "d": deque(), "a": deque()}
        self.answered = False

    async def run(self) -> None:
        """Read until the Answer was fed, or `linger_s` past the deadline (cancelled when the connection ends)."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap, group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    fetch_max_wait_ms=self.settings.kafka_fetch_max_wait_ms)
        await consumer.start()
        try:
            await self._position(consumer)
            key = self.request.response_id.encode()
            while not self.answered and self.request.remaining_seconds() > -self.linger_s:
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    for record in records:
                        if record.key == key and record.value is not None:
                            self._arrived(record.topic, record.value)
                await self._feed()
        finally:
            await consumer.stop()

    async def _position(self, consumer: AIOKafkaConsumer) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap)
        await admin.start()
        try:
            described = {t["topic"]: t for t in await admin.describe_topics(list(self.sources))}
        finally:
            await admin.close()
        parts = []
        for topic in self.sources:
            numbers = sorted(p["partition"] for p in described.get(topic, {}).get("partitions", []))
            if not numbers:
                raise RuntimeError(f"topic {topic} has no partitions")
            parts.append(TopicPartition(topic, int(DefaultPartitioner()(self.request.response_id.encode(), numbers,
                                                                           numbers))))
        consumer.assign(parts)
        since = int((self.request.created_at.timestamp() - self.lookback_s) * 1000)
        found = await consumer.offsets_for_times({tp: since for tp in parts})
        ends = await consumer.end_offsets(parts)
        for tp in parts:
            offset = found.get(tp)
            consumer.seek(tp, offset.offset if offset is not None else ends[tp])

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
                await self.on_answer(event)
        self.queue.put_nowait(event)
