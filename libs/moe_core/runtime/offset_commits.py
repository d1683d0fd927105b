"""Batched offset commits for the stage runtime's group consumers.

FastStream acknowledges a record (AckPolicy.NACK_ON_ERROR) with `consumer.commit()`: a broker round trip
per record, and it commits the consumer's *position*, which may already be past a record still being
handled. Here the acknowledgement only notes {partition: offset + 1} of the record whose handler returned
(or whose failure was dead-lettered); the notes go to the broker in one `commit(offsets)` at most every
MOE_KAFKA_COMMIT_INTERVAL_MS, when a partition is revoked (rebalance) and when the consumer stops.

- Never past an unhandled record: a consumer handles its records one by one in partition order, and only
  a record whose handler has returned is noted.
- At-least-once: a process that dies between handling and the flush loses only the note; the records are
  fetched again from the last commit (handlers are idempotent, moe_core.runtime.idempotency).
- A transient failure still seeks back (nack on the real consumer): the record is redelivered.
- interval 0: every acknowledgement commits at once (FastStream's own behaviour, one round trip each).
- Records handled concurrently (moe_core.runtime.key_ordered) are registered with `begin` when dispatched: a record's
  acknowledgement then moves its partition's note only up to the lowest offset still in flight, and a transient
  failure marks the record for a retry in place instead of seeking back. A partition revoked meanwhile starts a
  new generation: what the old one's records acknowledge later is not noted (they are fetched again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from faststream.kafka.message import KafkaAckableMessage

log = logging.getLogger(__name__)
RETRY = "moe_retry"  # set on a record handled concurrently whose handling asked for a redelivery
GENERATION = "moe_generation"  # set on a record handled concurrently: its partition's generation at dispatch


class OffsetCommits:
    """The noted offsets of a stage's group consumers (one router; several consumers with max_workers > 1)."""

    def __init__(self, interval_ms: int) -> None:
        self.interval_s = interval_ms / 1000
        self.commits = 0  # broker commit calls made (a counter for tests and measurements)
        self._pending: dict[Any, dict[TopicPartition, int]] = {}
        self._timers: dict[Any, asyncio.Task[None]] = {}
        self._hooked: set[int] = set()
        self._locks: dict[Any, asyncio.Lock] = {}
        self._flight: dict[TopicPartition, _InFlight] = {}  # partitions with records handled concurrently

    def begin(self, record: Any) -> None:
        """A record dispatched to be handled concurrently with others of its partition (its generation noted on
        it: the partition's at dispatch)."""
        flight = self._flight.setdefault(TopicPartition(record.topic, record.partition), _InFlight())
        flight.open.add(record.offset)
        setattr(record, GENERATION, flight.generation)

    def defer(self, msg: Any) -> None:
        """FastStream's message of a group consumer's record acknowledged through the notes: its consumer replaced
        by the deferred one (a broker's consumer, aiokafka's or moe_core.runtime.rdkafka_consumer's; FastStream's
        test fake is left be)."""
        if isinstance(msg, KafkaAckableMessage) and (isinstance(msg.consumer, AIOKafkaConsumer)
                                                     or getattr(msg.consumer, "real", False)):
            msg.consumer = self.deferred(msg.consumer, msg.raw_message)

    def deferred(self, consumer: Any, record: Any) -> _Deferred:
        """What FastStream's message sees as its consumer: `commit()` notes this record."""
        if id(consumer) not in self._hooked:
            self._hook_stop(consumer)
        tp = TopicPartition(record.topic, record.partition)
        return _Deferred(self, consumer, tp, record, getattr(record, GENERATION, None))

    async def note(self, consumer: Any, tp: TopicPartition, offset: int, generation: int | None = None) -> None:
        if generation is not None:  # handled concurrently: up to the lowest record still in flight
            flight = self._flight.get(tp)
            if flight is None or flight.generation != generation:
                return  # revoked since: fetched again by its owner
            offset = flight.done(offset - 1)
            if offset <= flight.noted:
                return  # an earlier record is still in flight: nothing new to commit
            flight.noted = offset
        self._pending.setdefault(consumer, {})[tp] = offset
        if self.interval_s <= 0:
            await self.flush(consumer)
        elif consumer not in self._timers:
            self._timers[consumer] = asyncio.create_task(self._flush_later(consumer))

    async def _flush_later(self, consumer: Any) -> None:
        try:
            await asyncio.sleep(self.interval_s)
        finally:
            self._timers.pop(consumer, None)
        await self.flush(consumer)

    async def flush(self, consumer: Any, only: set[TopicPartition] | None = None) -> None:
        """Commit what `consumer` noted (only the partitions in `only`, if given) and forget it. Partitions
        the consumer no longer owns are dropped: their records are redelivered to the new owner."""
        async with self._locks.setdefault(consumer, asyncio.Lock()):  # stop waits for a commit in flight
            await self._flush(consumer, only)

    async def _flush(self, consumer: Any, only: set[TopicPartition] | None) -> None:
        pending = self._pending.get(consumer)
        if not pending:
            return
        chosen = {tp: off for tp, off in pending.items() if only is None or tp in only}
        for tp in chosen:
            del pending[tp]
        owned = consumer.assignment()
        offsets = {tp: off for tp, off in chosen.items() if tp in owned}
        if len(offsets) < len(chosen):
            log.info("not committing partitions no longer assigned: %s", sorted(set(chosen) - set(offsets)))
        if not offsets:
            return
        self.commits += 1
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:  # membership changed, broker away: the records are fetched again
            log.warning("offset commit failed, the records will be redelivered: %r", exc)

    async def flush_all(self, only: set[TopicPartition] | None = None) -> None:
        for consumer in list(self._pending):
            await self.flush(consumer, only)

    def listener(self) -> ConsumerRebalanceListener:
        return _FlushOnRevoke(self)

    def revoked(self, tps: set[TopicPartition]) -> None:
        """The records in flight of revoked partitions are the next owner's: their acknowledgements are not noted."""
        for tp in tps:
            flight = self._flight.get(tp)
            if flight is not None:
                flight.restart()

    def _hook_stop(self, consumer: Any) -> None:
        """Flush before the consumer stops (FastStream stops it after cancelling its consume loop)."""
        self._hooked.add(id(consumer))
        stop = consumer.stop

        async def stop_after_flush() -> None:
            timer = self._timers.pop(consumer, None)
            if timer is not None:
                timer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await timer
            with contextlib.suppress(Exception):
                await self.flush(consumer)
            self._pending.pop(consumer, None)
            self._locks.pop(consumer, None)
            self._hooked.discard(id(consumer))
            await stop()

        consumer.stop = stop_after_flush


class _InFlight:
    """One partition's records handled concurrently: the offsets not finished, the end of those that are."""

    __slots__ = ("end", "generation", "noted", "open")

    def __init__(self) -> None:
        self.generation = 0
        self.open: set[int] = set()
        self.end = 0
        self.noted = 0  # the offset last handed to the notes

    def done(self, offset: int) -> int:
        """The record at `offset` finished: the offset the partition may be committed to now."""
        self.open.discard(offset)
        self.end = max(self.end, offset + 1)
        return min(self.open) if self.open else self.end

    def restart(self) -> None:
        self.generation += 1
        self.open.clear()
        self.end = self.noted = 0


class _Deferred:
    """Stands in for the AIOKafkaConsumer on one FastStream message."""

    __slots__ = ("_commits", "_consumer", "_generation", "_record", "_tp")

    def __init__(self, commits: OffsetCommits, consumer: Any, tp: TopicPartition, record: Any,
                 generation: int | None) -> None:
        self._commits, self._consumer, self._tp, self._record = commits, consumer, tp, record
        self._generation = generation

    async def commit(self) -> None:
        await self._commits.note(self._consumer, self._tp, self._record.offset + 1, self._generation)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        if self._generation is None:
            self._consumer.seek(partition, offset)
        else:  # handled concurrently: retried in place (moe_core.runtime.key_ordered), the later records go on
            setattr(self._record, RETRY, True)


class _FlushOnRevoke(ConsumerRebalanceListener):
    def __init__(self, commits: OffsetCommits) -> None:
        self.commits = commits

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.commits.flush_all(set(revoked))
        self.commits.revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        return None
