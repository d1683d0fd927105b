"""One request's progress, deltas and answers read back from their topics (a resumed stream's source).

The records are fed to a RequestRun's queue, first in the interleaving a stream id's path names (so the
renderer arrives at the state the client saw), then as they come, the Answer last. Every record of a
request is keyed by its response_id: one partition per topic (the producers' murmur2 partitioner), read
from `lookback_s` before the request was created (broker time; clock skew between hosts). Past the deadline
only what the topics hold now is read (`read_published`). `published_answers` finds the Answers of several
requests at once (the settle sweeper, gateway.settle_sweep).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner
from pydantic import ValidationError

from gateway.pending import Event
from gateway.stream_ids import Position
from moe_core.contracts import Answer, AnswerDelta, ChatRequest, Progress, Topics
from moe_core.kafka_clients import client_kwargs
from moe_core.settings import FleetSettings

log = logging.getLogger(__name__)


class Replay:
    def __init__(self, settings: FleetSettings, request: ChatRequest, after: Position, queue: asyncio.Queue[Event],
                 *, lookback_s: float, linger_s: float,
                 on_answer: Callable[[Answer], Awaitable[Answer]] | None = None) -> None:
        """on_answer: what happens to the Answer before the renderer gets it (settled, recorded); the Answer
        it returns is rendered."""
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
        self.ends: dict[TopicPartition, int] = {}

    async def run(self) -> None:
        """Read until the Answer was fed, or `linger_s` past the deadline (cancelled when the connection ends)."""
        consumer = _consumer(self.settings)
        await consumer.start()
        try:
            await self._position(consumer)
            while not self.answered and self.request.remaining_seconds() > -self.linger_s:
                await self._take(await consumer.getmany(timeout_ms=1000))
        finally:
            await consumer.stop()

    async def _take(self, batch: dict[TopicPartition, list[Any]]) -> None:
        """This request's records of one fetch, then what they complete fed on."""
        key = self.request.response_id.encode()
        for records in batch.values():
            for record in records:
                if record.key == key and record.value is not None:
                    self._arrived(record.topic, record.value)
        await self._feed()

    async def _position(self, consumer: AIOKafkaConsumer) -> None:
        found = await partitions_of(self.settings, list(self.sources), [self.request.response_id])
        parts = [TopicPartition(topic, found[topic][self.request.response_id]) for topic in self.sources]
        consumer.assign(parts)
        self.ends = await seek_since(consumer, {tp: self.request.created_at.timestamp() - self.lookback_s
                                                for tp in parts})

    async def read_published(self, timeout_s: float) -> None:
        """Past the deadline: feed what the topics hold now (up to their current ends), without waiting for
        more; `answered` tells whether the Answer was among it."""
        consumer = _consumer(self.settings)
        await consumer.start()
        try:
            await self._position(consumer)
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


def _consumer(settings: FleetSettings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(**client_kwargs(settings), group_id=None, enable_auto_commit=False,
                            auto_offset_reset="earliest", fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms)


async def partitions_of(settings: FleetSettings, topics: list[str], keys: list[str]) -> dict[str, dict[str, int]]:
    """topic -> key -> the partition the producers' default partitioner puts that key's records in."""
    admin = AIOKafkaAdminClient(**client_kwargs(settings))
    await admin.start()
    try:
        described = {t["topic"]: t for t in await admin.describe_topics(topics)}
    finally:
        await admin.close()
    out: dict[str, dict[str, int]] = {}
    for topic in topics:
        numbers = sorted(p["partition"] for p in described.get(topic, {}).get("partitions", []))
        if not numbers:
            raise RuntimeError(f"topic {topic} has no partitions")
        out[topic] = {key: int(DefaultPartitioner()(key.encode(), numbers, numbers)) for key in keys}
    return out


async def seek_since(consumer: AIOKafkaConsumer, since: dict[TopicPartition, float]) -> dict[TopicPartition, int]:
    """Seek each (assigned) partition to its first record at or after `since` (epoch s); their end offsets."""
    found = await consumer.offsets_for_times({tp: int(at * 1000) for tp, at in since.items()})
    ends: dict[TopicPartition, int] = await consumer.end_offsets(list(since))
    for tp in since:
        offset = found.get(tp)
        consumer.seek(tp, offset.offset if offset is not None else ends[tp])
    return ends


async def behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    """Some partition has not been read up to its end offset yet."""
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False


async def published_answers(settings: FleetSettings, requests: dict[str, float], *, lookback_s: float,
                            timeout_s: float) -> dict[str, Answer]:
    """The Answers on the answers topic now for these requests (response_id -> creation, epoch s); one
    consumer, each partition read from its earliest request's creation up to its current end."""
    topic = Topics.for_namespace(settings.topic_namespace).answers
    where = (await partitions_of(settings, [topic], list(requests)))[topic]
    since: dict[TopicPartition, float] = {}
    for rid, created in requests.items():
        tp = TopicPartition(topic, where[rid])
        since[tp] = min(since.get(tp, created), created) - lookback_s
    consumer = _consumer(settings)
    await consumer.start()
    found: dict[str, Answer] = {}
    try:
        consumer.assign(list(since))
        ends = await seek_since(consumer, since)
        async with asyncio.timeout(timeout_s):
            while await behind(consumer, ends):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        rid = record.key.decode(errors="replace") if record.key else ""
                        if rid in requests and rid not in found and record.value is not None:
                            try:
                                found[rid] = Answer.model_validate_json(record.value)
                            except ValidationError:
                                log.warning("skipping an invalid Answer record of %s", rid)
    finally:
        await consumer.stop()
    return found
