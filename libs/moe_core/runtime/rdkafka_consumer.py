"""The Bus's consumers on librdkafka (confluent-kafka), the default (MOE_KAFKA_CONSUMER=aiokafka: aiokafka's own,
the fallback): aiokafka's consumer as the runtime uses it, so that FastStream's subscriber (its loop, `running`
flag, lock, parser, middlewares and stop), the deferred commits (moe_core.runtime.offset_commits), key ordering
(moe_core.runtime.key_ordered), redelivery, the lag metric and wait_positioned / wait_caught_up stay what they are;
only the fetching and the record batches' decoding move to librdkafka's threads (issue 52: aiokafka's fetch decoding
was a hop's largest share of CPU).

- records are taken up to BATCH at a time (what librdkafka has queued) in a worker thread and handed to the loop
  one by one (`getone`); the position is the offset after the last record handed over, as aiokafka's;
- the consumer's own librdkafka client is called only from the thread that fetches (and serves its rebalance
  callbacks): a commit or seek asked on the event loop is made there before the next fetch. (confluent-kafka holds
  the GIL through an asynchronous commit: one from the loop while the fetch thread was in a revocation waiting for
  the loop hung both.)
- offsets are committed only when asked (`commit`: the given offsets, or the positions), never by librdkafka itself
  (enable.auto.commit and enable.auto.offset.store off); sent without waiting for the broker's answer, except in a
  revocation (waited for there, in librdkafka's callback); a revocation (a rebalance's, a lost partition's or the
  close's) commits, waited for, what was asked and not answered for its partitions: an unanswered commit can be
  refused (a rebalance under way), and the next owner would read those records again; the close commits what is
  outstanding;
- a `seek` drops what was fetched of the partition, also a batch being fetched meanwhile;
- the lag metric's high watermarks (`highwater`) are librdkafka's cached ones, read by the fetch thread at each
  fetch once asked for (read on the loop, they waited while a rebalance callback waited for the loop);
- a rebalance runs the subscriber's listener (OffsetCommits' flush on revoke) on the event loop, the poll thread
  waiting for it, as aiokafka does before it rejoins (librdkafka's eager assignors: revoke, then assign);
- a group-less subscription (group_id None) is assigned every partition of its topics at the low or high watermark
  (auto_offset_reset), resolved at start: its position is known at once (wait_positioned);
- a broker's refusal of a fetch (an authorization error) is raised from `getone` as aiokafka's exception of its
  code; FastStream's loop logs it and tries again after 5 s, as with aiokafka.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import queue
import threading
import time
import types
import uuid
from collections.abc import Iterable
from functools import partial
from typing import Any

import confluent_kafka
from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import ConsumerStoppedError
from aiokafka.structs import ConsumerRecord

from moe_core.runtime.rdkafka_producer import kafka_error, rdkafka_connection
from moe_core.runtime.settings import FleetSettings

log = logging.getLogger(__name__)
BATCH = 500  # records per consume() call: what one thread hop brings
QUEUED_KB = 4096  # librdkafka's prefetch of the consumer (its default, 64 MB, per consumer of every service)
TIMEOUT_MS = 10_000  # a metadata, watermark or commit request of the loop's own
START_S = 30.0  # how long a group-less consumer's start waits for its topics' leaders


class RdKafkaConsumer:
    """One consumer of a FastStream subscriber on librdkafka (built by the broker's builder: consumer_builder)."""

    real = True  # a broker's consumer, not FastStream's test fake: its acknowledgements are deferred (stage.consumer)

    def __init__(self, settings: FleetSettings, *, group_id: str | None = None, client_id: str | None = None,
                 auto_offset_reset: str = "latest", enable_auto_commit: bool = False, fetch_max_wait_ms: int = 500,
                 fetch_min_bytes: int = 1, session_timeout_ms: int = 10_000, heartbeat_interval_ms: int = 3_000,
                 max_poll_interval_ms: int = 300_000, consumer_timeout_ms: int = 1_000, **_aiokafka: Any) -> None:
        if enable_auto_commit and group_id:
            raise ValueError("the librdkafka consumer commits only when asked (AckPolicy.ACK_FIRST in a group: use "
                             "MOE_KAFKA_CONSUMER=aiokafka)")
        self._group_id = group_id
        self._reset = auto_offset_reset
        self._timeout_s = max(consumer_timeout_ms, 100) / 1000  # one consume() call's wait for a record
        self._config = {
            **rdkafka_connection(settings),
            "client.id": client_id or settings.service_name,
            # librdkafka needs a group even where nothing is committed; a group-less consumer never joins it
            "group.id": group_id or f"moe-groupless-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": auto_offset_reset,
            "fetch.wait.max.ms": fetch_max_wait_ms,
            "fetch.min.bytes": fetch_min_bytes,
            "session.timeout.ms": session_timeout_ms,
            "heartbeat.interval.ms": heartbeat_interval_ms,
            "max.poll.interval.ms": max_poll_interval_ms,
            "queued.max.messages.kbytes": QUEUED_KB,
            "enable.partition.eof": False,
        }
        self._consumer: Any = None
        self._sidecar: Any = None
        self._sidecar_made = threading.Lock()
        self._callback_calls: queue.Queue[tuple[Any, concurrent.futures.Future[Any]]] | None = None
        self._topics: list[str] = []
        self._listener: ConsumerRebalanceListener | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._records: collections.deque[ConsumerRecord[Any, Any]] = collections.deque()
        self._positions: dict[TopicPartition, int] = {}
        self._outgoing: dict[TopicPartition, int] = {}  # commits asked on the loop, sent before the next fetch
        self._unanswered: dict[TopicPartition, int] = {}  # commits sent without waiting for the broker's answer
        self._seeking: dict[TopicPartition, int] = {}  # seeks asked on the loop, made before the next fetch
        self._assigned: set[TopicPartition] = set()
        self._seeks: dict[TopicPartition, int] = {}  # partition -> the fetch epoch of its last seek
        self._highwaters: dict[TopicPartition, int] = {}  # read by the fetch thread (highwater)
        self._watch_highwaters = False
        self._epoch = 0
        self._fetching: asyncio.Future[Any] | None = None
        self._error: Exception | None = None
        self._closed = False

    # what FastStream's subscriber calls
    def subscribe(self, topics: Iterable[str] = (), pattern: str | None = None,
                  listener: ConsumerRebalanceListener | None = None) -> None:
        if pattern:
            raise ValueError("the librdkafka consumer takes topics, not a pattern")
        self._topics, self._listener = list(topics), listener

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._consumer = confluent_kafka.Consumer(self._config)
        if self._group_id:
            # a subscribed topic librdkafka does not see yet is read only after its next metadata refresh (minutes)
            await asyncio.to_thread(self._await_topics)
            self._consumer.subscribe(self._topics, on_assign=self._on_assign, on_revoke=self._on_revoke,
                                     on_lost=self._on_revoke)
            return
        await asyncio.to_thread(self._assign_all)

    def _await_topics(self) -> None:
        """Until the metadata names the subscribed topics, each partition with its leader (up to START_S)."""
        end = time.monotonic() + START_S
        while time.monotonic() < end:
            topics = self._consumer.list_topics(timeout=TIMEOUT_MS / 1000).topics
            if all(name in topics and topics[name].error is None and topics[name].partitions
                   and all(p.leader >= 0 for p in topics[name].partitions.values()) for name in self._topics):
                return
            time.sleep(0.2)
        log.warning("the topics %s are not all in the broker's metadata: they are read once they are", self._topics)

    def _assign_all(self) -> None:
        """A group-less consumer's partitions, every one at its low or high watermark. A topic just created (its
        leader not elected yet, not yet in the metadata) is asked again for up to START_S, as aiokafka waits."""
        end = time.monotonic() + START_S
        while True:
            try:
                partitions = self._watermarks()
                break
            except (KeyError, confluent_kafka.KafkaException) as exc:
                if time.monotonic() > end:
                    failed = kafka_error(exc.args[0]) if isinstance(exc, confluent_kafka.KafkaException) else exc
                    raise failed from None
                time.sleep(0.2)
        for p in partitions:
            self._positions[TopicPartition(p.topic, p.partition)] = p.offset
        self._consumer.assign(partitions)
        self._assigned = {TopicPartition(p.topic, p.partition) for p in partitions}

    def _watermarks(self) -> list[confluent_kafka.TopicPartition]:
        metadata = self._consumer.list_topics(timeout=TIMEOUT_MS / 1000)
        partitions: list[confluent_kafka.TopicPartition] = []
        for topic in self._topics:
            for number in sorted(metadata.topics[topic].partitions):
                low, high = self._consumer.get_watermark_offsets(confluent_kafka.TopicPartition(topic, number),
                                                                 timeout=TIMEOUT_MS / 1000)
                partitions.append(confluent_kafka.TopicPartition(topic, number, self._reset_to(low, high)))
        return partitions

    async def getone(self) -> ConsumerRecord[Any, Any]:
        while not self._records:
            if self._closed:
                raise ConsumerStoppedError
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            await self._fetch()
        record = self._records.popleft()
        self._positions[TopicPartition(record.topic, record.partition)] = record.offset + 1
        return record

    async def getmany(self, *partitions: TopicPartition, timeout_ms: int = 0,
                      max_records: int | None = None) -> dict[TopicPartition, list[ConsumerRecord[Any, Any]]]:
        if not self._records and not self._closed:
            await self._fetch()
        batch: dict[TopicPartition, list[ConsumerRecord[Any, Any]]] = {}
        while self._records and (max_records is None or sum(map(len, batch.values())) < max_records):
            record = await self.getone()
            batch.setdefault(TopicPartition(record.topic, record.partition), []).append(record)
        return batch

    async def _fetch(self) -> None:
        """One consume() in a worker thread; its records join the queue when it returns, even if the caller was
        cancelled meanwhile (a stop: they are not handled, and not committed)."""
        if self._fetching is None:
            fetching = asyncio.ensure_future(asyncio.to_thread(self._consume, self._epoch))
            fetching.add_done_callback(self._arrived)
            self._fetching = fetching
        await asyncio.shield(self._fetching)

    def _consume(self, epoch: int) -> tuple[int, list[ConsumerRecord[Any, Any]], Exception | None]:
        records: list[ConsumerRecord[Any, Any]] = []
        error: Exception | None = None
        self._send_asked()
        # consume(n, timeout) waits out its timeout unless n records come: the first record is waited for with
        # poll, then what is already queued is taken without waiting
        first = self._consumer.poll(self._timeout_s)
        batch = [first, *self._consumer.consume(BATCH - 1, 0)] if first is not None else []
        if self._watch_highwaters:
            self._read_highwaters()
        for msg in batch:
            err = msg.error()
            if err is not None:
                if err.code() > 0 and error is None:  # the broker refused (authorization, unknown topic)
                    error = kafka_error(err)
                else:
                    log.warning("the librdkafka consumer: %s", err.str())
                continue
            stamp_type, stamp = msg.timestamp()
            key, value = msg.key(), msg.value()
            records.append(ConsumerRecord(
                msg.topic(), msg.partition(), msg.offset(), stamp, stamp_type, key, value, None,
                len(key) if key is not None else -1, len(value) if value is not None else -1,
                tuple(msg.headers() or ())))
        return epoch, records, error

    def _arrived(self, fetching: asyncio.Future[Any]) -> None:
        self._fetching = None
        if fetching.cancelled() or fetching.exception() is not None:
            if not fetching.cancelled():
                self._error = fetching.exception()  # type: ignore[assignment]
            return
        epoch, records, error = fetching.result()
        if self._seeks:  # what was fetched before a seek of its partition is fetched again from there
            records = [r for r in records if self._seeks.get(TopicPartition(r.topic, r.partition), -1) <= epoch]
        self._records.extend(records)
        self._error = self._error or error

    def seek(self, partition: TopicPartition, offset: int) -> None:
        """Fetch the partition again from `offset`: what was fetched of it is dropped, the seek is made before the
        next fetch (a fetch under way is dropped when it arrives)."""
        self._epoch += 1
        self._seeks[partition] = self._epoch
        self._drop({partition})
        self._positions[partition] = offset
        self._seeking[partition] = offset

    def _send_asked(self) -> None:
        """On the fetch thread: the seeks and the commits asked on the loop since the last fetch (the commits sent
        without waiting, noted as unanswered)."""
        seeking, self._seeking = self._seeking, {}
        for tp, offset in seeking.items():
            if tp in self._assigned:
                self._consumer.seek(confluent_kafka.TopicPartition(tp.topic, tp.partition, offset))
        outgoing, self._outgoing = self._outgoing, {}
        if outgoing and self._group_id:
            listed = [confluent_kafka.TopicPartition(tp.topic, tp.partition, off) for tp, off in outgoing.items()]
            try:
                self._consumer.commit(offsets=listed, asynchronous=True)
            except confluent_kafka.KafkaException as exc:  # not even sent: the revocation or the close sends it
                log.warning("an offset commit was not sent (%s): it is sent again by the next revocation", exc)
            self._unanswered.update(outgoing)

    async def commit(self, offsets: dict[TopicPartition, Any] | None = None) -> None:
        """The given offsets (an int or an OffsetAndMetadata per partition), else the positions: sent before the
        next fetch, without waiting for the broker's answer; in a revocation's listener, committed at once and
        acknowledged (aiokafka's KafkaError of the code where the broker refuses)."""
        chosen = offsets if offsets is not None else {tp: off for tp, off in self._positions.items()
                                                       if tp in self._assigned}
        if not chosen or not self._group_id:
            return
        listed = [confluent_kafka.TopicPartition(tp.topic, tp.partition, int(getattr(off, "offset", off)))
                  for tp, off in chosen.items()]
        try:
            calls = self._callback_calls
            if calls is None:  # sent by the fetch thread, not waited for: a commit waiting for its answer while a
                # rebalance waited for the listener, whose flush waited for that commit, hung both
                self._outgoing.update({TopicPartition(p.topic, p.partition): p.offset for p in listed})
            else:  # a revocation's listener: committed on the thread in the callback (from another one it hung)
                done: concurrent.futures.Future[Any] = concurrent.futures.Future()
                calls.put((partial(self._consumer.commit, offsets=listed, asynchronous=False), done))
                await asyncio.wrap_future(done)
                for p in listed:  # answered, and later than anything asked before: never made again (backwards)
                    self._outgoing.pop(TopicPartition(p.topic, p.partition), None)
                    self._unanswered.pop(TopicPartition(p.topic, p.partition), None)
        except confluent_kafka.KafkaException as exc:
            raise kafka_error(exc.args[0]) from None

    def assignment(self) -> set[TopicPartition]:
        return set(self._assigned)

    async def position(self, partition: TopicPartition) -> int:
        """The offset of the next record handed over (of a partition not read yet: its committed offset, else the
        watermark of auto_offset_reset)."""
        known = self._positions.get(partition)
        if known is not None:
            return known
        tp = confluent_kafka.TopicPartition(partition.topic, partition.partition)
        committed = await asyncio.to_thread(self._side().committed, [tp], TIMEOUT_MS / 1000)
        if committed and committed[0].offset >= 0:
            return int(committed[0].offset)
        low, high = await asyncio.to_thread(self._side().get_watermark_offsets, tp, TIMEOUT_MS / 1000)
        return self._reset_to(low, high)

    def _reset_to(self, low: int, high: int) -> int:
        """Where a partition without a committed offset starts: auto_offset_reset's watermark."""
        return int(low if self._reset == "earliest" else high)

    def _side(self) -> Any:
        """A client of its own for what the loop asks for (position's committed offset and watermarks,
        end_offsets): the broker answers a connection's requests in order, so on the consumer's own one they waited
        behind its parked fetch (up to MOE_KAFKA_FETCH_MAX_WAIT_MS); and a call on the consumer's own client from
        another thread than the fetch thread's waited while that one was in a revocation waiting for the loop. Of
        the same group (its committed offsets), it never joins it (it neither subscribes nor commits)."""
        with self._sidecar_made:  # asked by the fetch thread (an assignment's starts) and the loop's worker threads
            if self._sidecar is None:
                self._sidecar = confluent_kafka.Consumer(self._config)
        return self._sidecar

    def position_now(self, partition: TopicPartition) -> int | None:
        """The position without a request (the lag metric): None before the first record handed over."""
        return self._positions.get(partition)

    def highwater(self, partition: TopicPartition) -> int | None:
        """The partition's high watermark as of the last fetch (None: not fetched since the first call). Read by
        the fetch thread at each fetch once asked for: librdkafka's cached watermark read here, on the loop, waited
        while the fetch thread was in a rebalance callback waiting for the loop (a scrape of /metrics during a
        rebalance hung the service)."""
        self._watch_highwaters = True
        return self._highwaters.get(partition)

    def _read_highwaters(self) -> None:
        """On the fetch thread, once the lag metric asked: the assigned partitions' cached high watermarks."""
        for tp in list(self._assigned):
            try:
                _, high = self._consumer.get_watermark_offsets(
                    confluent_kafka.TopicPartition(tp.topic, tp.partition), cached=True)
            except confluent_kafka.KafkaException:
                continue
            if high is not None and high >= 0:
                self._highwaters[tp] = int(high)

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        ends = {}
        for partition in partitions:
            tp = confluent_kafka.TopicPartition(partition.topic, partition.partition)
            _, ends[partition] = await asyncio.to_thread(self._side().get_watermark_offsets, tp, TIMEOUT_MS / 1000)
        return ends

    async def stop(self) -> None:
        """The fetch under way ends (up to consumer_timeout_ms), then the consumer leaves its group (the listener
        runs for its partitions: their noted offsets are committed) and closes."""
        if self._closed or self._consumer is None:
            self._closed = True
            return
        self._closed = True
        if self._fetching is not None:
            await asyncio.wait({self._fetching})
        await asyncio.to_thread(self._close)
        if self._sidecar is not None:
            await asyncio.to_thread(self._sidecar.close)
        self._records.clear()

    def _close(self) -> None:
        """What was asked and not answered committed, waited for; then the consumer leaves its group."""
        self._commit_unanswered(set(self._outgoing) | set(self._unanswered))
        self._consumer.close()

    # librdkafka's rebalance callbacks, on the thread in consume() (or close())
    def _on_assign(self, _consumer: Any, partitions: list[confluent_kafka.TopicPartition]) -> None:
        """The partitions assigned from where they start (as aiokafka's position: the committed offset, else the
        watermark of auto_offset_reset), known before the first fetch: wait_positioned can rely on it."""
        assigned = {TopicPartition(p.topic, p.partition) for p in partitions}
        try:
            starts = self._starts(partitions)
        except (confluent_kafka.KafkaException, ValueError) as exc:  # librdkafka's own reset then
            log.warning("the start offsets of %s were not read (%s): librdkafka resets them", sorted(assigned), exc)
            self._consumer.assign(partitions)
        else:
            self._consumer.assign(starts)
            self._positions.update({TopicPartition(p.topic, p.partition): p.offset for p in starts})
        self._assigned |= assigned
        if self._listener is not None:
            self._on_loop(self._listener.on_partitions_assigned(assigned))

    def _starts(self, partitions: list[confluent_kafka.TopicPartition]) -> list[confluent_kafka.TopicPartition]:
        starts = []
        for tp in self._consumer.committed(partitions, timeout=TIMEOUT_MS / 1000) if partitions else []:
            offset = tp.offset
            if offset < 0:
                low, high = self._side().get_watermark_offsets(confluent_kafka.TopicPartition(tp.topic, tp.partition),
                                                               timeout=TIMEOUT_MS / 1000)
                offset = self._reset_to(low, high)
            starts.append(confluent_kafka.TopicPartition(tp.topic, tp.partition, offset))
        return starts

    @property
    def _coordinator(self) -> Any:
        """What FastStream's rebalance logging reads (aiokafka's coordinator's member id): the client id (librdkafka's
        memberid() waits for the rebalance that is calling the listener)."""
        return types.SimpleNamespace(member_id=self._config["client.id"])

    def _on_revoke(self, _consumer: Any, partitions: list[confluent_kafka.TopicPartition]) -> None:
        """A rebalance's revocation runs the listener (what was handled is committed); the one of the consumer's
        own close does not: as aiokafka's stop, it leaves the group after OffsetCommits flushed (its stop hook)."""
        revoked = {TopicPartition(p.topic, p.partition) for p in partitions}
        if self._listener is not None and not self._closed:
            self._on_loop(self._listener.on_partitions_revoked(revoked))
        self._commit_unanswered(revoked)
        self._on_loop(self._forget(revoked))

    def _commit_unanswered(self, revoked: set[TopicPartition]) -> None:
        """The revoked partitions' commits asked and not answered, made (again) and waited for, on the fetch
        thread: one refused meanwhile (a rebalance under way) would give their records to the next owner again."""
        asked = {tp: self._unanswered.pop(tp) for tp in revoked if tp in self._unanswered}
        asked |= {tp: self._outgoing.pop(tp) for tp in revoked if tp in self._outgoing}  # later than what was sent
        again = [confluent_kafka.TopicPartition(tp.topic, tp.partition, offset) for tp, offset in asked.items()]
        if not again or not self._group_id:
            return
        try:
            self._consumer.commit(offsets=again, asynchronous=False)
        except confluent_kafka.KafkaException as exc:  # a lost partition: its next owner reads from the last commit
            log.warning("the commit of revoked partitions failed, their records will be redelivered: %s", exc)

    async def _forget(self, revoked: set[TopicPartition]) -> None:
        self._assigned -= revoked
        self._drop(revoked)
        for tp in revoked:
            self._positions.pop(tp, None)
            self._seeking.pop(tp, None)
            self._highwaters.pop(tp, None)

    def _on_loop(self, coro: Any) -> None:
        """Run the coroutine on the event loop and wait for it (this thread is librdkafka's, in its rebalance
        callback), meanwhile making the commits the coroutine asks for here."""
        assert self._loop is not None
        calls: queue.Queue[tuple[Any, concurrent.futures.Future[Any]]] = queue.Queue()
        self._callback_calls = calls
        try:
            running = asyncio.run_coroutine_threadsafe(coro, self._loop)
            while True:
                try:
                    call, done = calls.get(timeout=0.05)
                except queue.Empty:
                    if running.done():
                        break
                    continue
                try:
                    done.set_result(call())
                except Exception as exc:
                    done.set_exception(exc)
            running.result()
        except Exception:
            log.exception("a rebalance listener failed")
        finally:
            self._callback_calls = None

    def _drop(self, partitions: set[TopicPartition]) -> None:
        if self._records:
            kept = [r for r in self._records if TopicPartition(r.topic, r.partition) not in partitions]
            self._records = collections.deque(kept)


def consumer_builder(settings: FleetSettings) -> Any:
    """What a FastStream KafkaBroker builds its subscribers' consumers with (aiokafka's keyword arguments)."""

    def build(**kwargs: Any) -> RdKafkaConsumer:
        return RdKafkaConsumer(settings, **kwargs)

    return build
