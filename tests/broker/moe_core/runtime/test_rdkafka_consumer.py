"""The Bus's consumers on librdkafka (MOE_KAFKA_CONSUMER=librdkafka, moe_core.runtime.rdkafka_consumer) on the real
broker: the stage's consumer is librdkafka's; two members of a group share the partitions and a rebalance commits
what the leaving owner handled; a group-less subscription is positioned at once and reads what comes after; a seek
(a redelivery) drops what was fetched after the record. The runtime's guarantees are the same tests as aiokafka's
(key ordering and the commit never past a record in flight, commits after the handler, redelivery, dead letters,
the shutdown's grace), run here again with the librdkafka consumer."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import confluent_kafka
import pytest
from aiokafka import ConsumerRebalanceListener, TopicPartition

from moe_core.contracts import ChatRequest
from moe_core.runtime.bus import Bus, ensure_topics, wait_caught_up, wait_positioned
from moe_core.runtime.offset_commits import OffsetCommits
from moe_core.runtime.rdkafka_consumer import RdKafkaConsumer
from moe_core.runtime.rdkafka_producer import rdkafka_connection
from moe_core.runtime.settings import FleetSettings
from tests.broker.moe_core.runtime import (
    test_batched_commits,
    test_key_ordered,
    test_poison_and_oversize,
    test_service_shutdown,
)
from tests.broker.moe_core.runtime.test_batched_commits import _committed, _consume, _is, _request, _until

pytestmark = pytest.mark.infra
PARTITIONS = 2


@pytest.fixture(autouse=True)
def _librdkafka(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every Bus of these tests (and of the child processes they start) consumes with librdkafka."""
    monkeypatch.setenv("MOE_KAFKA_CONSUMER", "librdkafka")
    yield


# the runtime's guarantees, as with aiokafka
test_records_of_different_keys_are_handled_at_once = test_key_ordered.test_records_of_different_keys_are_handled_at_once
test_one_keys_records_are_handled_in_order_one_at_a_time = (
    test_key_ordered.test_one_keys_records_are_handled_in_order_one_at_a_time)
test_the_commit_never_passes_a_record_in_flight = test_key_ordered.test_the_commit_never_passes_a_record_in_flight
test_a_transient_failure_is_retried_in_place = test_key_ordered.test_a_transient_failure_is_retried_in_place
test_handled_records_are_committed_together_up_to_the_end = (
    test_batched_commits.test_handled_records_are_committed_together_up_to_the_end)
test_a_consumer_killed_before_its_flush_has_its_records_redelivered = (
    test_batched_commits.test_a_consumer_killed_before_its_flush_has_its_records_redelivered)
test_a_transient_failure_is_redelivered_and_then_committed = (
    test_batched_commits.test_a_transient_failure_is_redelivered_and_then_committed)
test_poison_and_oversized_messages_are_dead_lettered_and_the_partition_moves_on = (
    test_poison_and_oversize.test_poison_and_oversized_messages_are_dead_lettered_and_the_partition_moves_on)
test_a_message_still_handled_after_the_grace_is_cancelled_and_the_next_owner_handles_it = (
    test_service_shutdown.test_a_message_still_handled_after_the_grace_is_cancelled_and_the_next_owner_handles_it)
test_a_message_finished_within_the_grace_is_committed_though_another_subscription_stops_with_it = (
    test_service_shutdown
    .test_a_message_finished_within_the_grace_is_committed_though_another_subscription_stops_with_it)


def _settings(bootstrap: str, namespace: str, partitions: int = PARTITIONS) -> FleetSettings:
    return FleetSettings(kafka_bootstrap=bootstrap, topic_namespace=namespace, topic_partitions=partitions,
                         service_name="rdconsumer-test", consumer_workers=1, kafka_commit_interval_ms=100)


def _consumer(bus: Bus) -> RdKafkaConsumer:
    (subscriber,) = bus.broker.subscribers
    consumer = getattr(subscriber, "consumer", None)
    assert isinstance(consumer, RdKafkaConsumer)
    return consumer


class _Unanswered:
    """The consumer's librdkafka client, its commits sent without waiting never reaching the broker (as one refused
    during a rebalance under way)."""

    def __init__(self, real: Any) -> None:
        self._real, self.lost = real, 0

    def commit(self, *args: Any, asynchronous: bool = True, **kwargs: Any) -> Any:
        if asynchronous:
            self.lost += 1
            return None
        return self._real.commit(*args, asynchronous=False, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@pytest.mark.parametrize("unanswered", ["answered", "lost"])
async def test_two_members_share_the_partitions_and_a_rebalance_commits_what_was_handled(
        infra: dict[str, str], namespace: str, unanswered: str) -> None:
    """What the first member handled is committed by the rebalance, also where its commits sent without waiting
    were lost (the revocation makes them again, waited for)."""
    settings = _settings(infra["kafka"], namespace)
    producer = Bus(settings)
    await producer.ensure_topics()
    topic = producer.topics.requests
    handled: dict[str, Counter[str]] = {"a": Counter(), "b": Counter()}

    def handler(member: str) -> Callable[[ChatRequest], Awaitable[None]]:
        async def handle(request: ChatRequest) -> None:
            handled[member][request.response_id] += 1

        return handle

    first = [f"first-{i}" for i in range(10)]
    for rid in first:
        await producer.send_record(topic, rid.encode(), _request(rid), {})
    commits = OffsetCommits(settings.kafka_commit_interval_ms)
    a = await _consume(settings, handler("a"), commits)
    b: Bus | None = None
    try:
        client = _Unanswered(_consumer(a)._consumer)
        if unanswered == "lost":
            _consumer(a)._consumer = client
        await _until(lambda: _is(len(handled["a"]) == len(first)), "the first member handles every record")
        if unanswered == "lost":  # handled, its commits sent and lost: nothing committed before the rebalance
            await _until(lambda: _is(commits.commits > 0 and client.lost > 0), "a commit sent and lost")
            assert await _committed(infra["kafka"], settings.group_id(), topic) == {}
        assert len(_consumer(a).assignment()) == PARTITIONS
        b = await _consume(settings, handler("b"), OffsetCommits(settings.kafka_commit_interval_ms))
        await _until(lambda: _is(len(_consumer(a).assignment()) == 1 and len(_consumer(b).assignment()) == 1),
                     "the partitions shared after the rebalance", limit_s=60)
        _consumer(a)._consumer = client._real  # the broker answers again
        second = [f"second-{i}" for i in range(20)]
        for rid in second:
            await producer.send_record(topic, rid.encode(), _request(rid), {})
        await _until(lambda: _is(set(handled["a"]) | set(handled["b"]) >= set(second)), "every record handled")
        ends = {p: 0 for p in range(PARTITIONS)}
        for tp, end in (await _consumer(a).end_offsets(list(_consumer(a).assignment() | _consumer(b).assignment()))
                        ).items():
            ends[tp.partition] = end

        async def at_end() -> bool:
            return await _committed(infra["kafka"], settings.group_id(), topic) == ends

        await _until(at_end, "the committed offsets reach the end of each partition")
    finally:
        await a.close()
        if b is not None:
            await b.close()
        await producer.close()
    assert handled["a"] and handled["b"]  # both members read
    # what the first member handled before the rebalance was committed on revoke: the second does not read it again
    assert not set(first) & set(handled["b"])
    assert all(n == 1 for member in handled.values() for n in member.values())


async def test_a_groupless_subscription_is_positioned_at_once_and_reads_what_comes_after(
        infra: dict[str, str], namespace: str) -> None:
    settings = _settings(infra["kafka"], namespace)
    bus = Bus(settings)
    await ensure_topics(settings.kafka_bootstrap, [bus.topics.requests], PARTITIONS)
    await bus.send_record(bus.topics.requests, b"before", _request("before"), {})
    latest: asyncio.Queue[str] = asyncio.Queue()
    earliest: list[str] = []

    async def on_latest(request: ChatRequest) -> None:
        await latest.put(request.response_id)

    async def on_earliest(request: ChatRequest) -> None:
        earliest.append(request.response_id)

    late = bus.subscribe(bus.topics.requests, ChatRequest, on_latest, group=False, offset_reset="latest")
    early = bus.subscribe(bus.topics.requests, ChatRequest, on_earliest, group=False, offset_reset="earliest")
    await bus.broker.start()
    try:
        assert isinstance(late.consumer, RdKafkaConsumer)
        await wait_positioned(late)  # no sleep after it: a record published now must be read
        await bus.send_record(bus.topics.requests, b"after", _request("after"), {})
        assert await asyncio.wait_for(latest.get(), 20) == "after"
        await wait_caught_up(early, 20)
        assert earliest[:1] == ["before"]
        assert await _committed(infra["kafka"], settings.group_id(), bus.topics.requests) == {}  # none commits
    finally:
        await bus.close()


async def test_a_seek_drops_what_was_fetched_after_the_record(infra: dict[str, str], namespace: str) -> None:
    settings = _settings(infra["kafka"], namespace, 1)
    bus = Bus(settings)
    await ensure_topics(settings.kafka_bootstrap, [bus.topics.requests], 1)
    for i in range(5):
        await bus.send_record(bus.topics.requests, b"k", _request(f"r{i}"), {})
    consumer = RdKafkaConsumer(settings, group_id=f"seek-{namespace}", auto_offset_reset="earliest",
                               fetch_max_wait_ms=100, consumer_timeout_ms=200)
    consumer.subscribe([bus.topics.requests])
    await consumer.start()
    try:
        offsets = [(await asyncio.wait_for(consumer.getone(), 30)).offset for _ in range(2)]
        (tp,) = consumer.assignment()
        consumer.seek(tp, 1)  # as FastStream's nack: the record at 1 again, then the rest in order
        assert await consumer.position(tp) == 1
        offsets += [(await asyncio.wait_for(consumer.getone(), 30)).offset for _ in range(4)]
        await consumer.commit()  # sent by the fetch thread before its next fetch
        waiting = asyncio.ensure_future(consumer.getone())

        async def committed() -> bool:
            return await _committed(infra["kafka"], f"seek-{namespace}", bus.topics.requests) == {0: 5}

        await _until(committed, "the positions committed with the next fetch")
        waiting.cancel()
    finally:
        await consumer.stop()
        await bus.close()
    assert offsets == [0, 1, 1, 2, 3, 4]


class _ScrapedInRevocation(ConsumerRebalanceListener):  # type: ignore[misc]
    """A revocation's listener that reads the lag metric's high watermark meanwhile (as a scrape of /metrics on the
    event loop while the fetch thread waits for the listener), in a thread: whether it answered within `wait_s`."""

    def __init__(self, wait_s: float) -> None:
        self.consumer: RdKafkaConsumer | None = None
        self.wait_s, self.answered = wait_s, []

    async def on_partitions_revoked(self, revoked: Any) -> None:
        assert self.consumer is not None
        consumer = self.consumer
        reads = [asyncio.ensure_future(asyncio.to_thread(consumer.highwater, tp)) for tp in revoked]
        done, _ = await asyncio.wait(reads, timeout=self.wait_s)  # read on the loop, a deadlock: no test could end
        self.answered.append(len(done) == len(reads))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None


async def test_the_lag_metrics_high_watermark_is_read_while_a_rebalance_waits_for_the_loop(
        infra: dict[str, str], namespace: str) -> None:
    """A scrape of /metrics during a rebalance: the high watermark answers at once, never waits for the fetch
    thread (which waits for the listener on the loop: the e2e fleet's control plane hung there for good when a
    second control plane joined its group while Prometheus scraped it)."""
    settings = _settings(infra["kafka"], namespace)
    bus = Bus(settings)
    await ensure_topics(settings.kafka_bootstrap, [bus.topics.requests], PARTITIONS)
    for i in range(4):
        await bus.send_record(bus.topics.requests, f"k{i}".encode(), _request(f"r{i}"), {})
    group = f"scraped-{namespace}"
    listener = _ScrapedInRevocation(wait_s=20)

    async def watch(first: RdKafkaConsumer) -> None:
        for tp in first.assignment():
            first.highwater(tp)  # the metric asked once: read at each fetch from then on
        await _until(lambda: _is(sum(first.highwater(tp) or 0 for tp in first.assignment()) == 4),
                     "the high watermarks read by the fetch thread")

    try:
        await _second_member_joins(settings, group, bus.topics.requests, listener, watch)
    finally:
        await bus.close()
    assert listener.answered[0]


def _commit(settings: FleetSettings, group: str, partition: TopicPartition, offset: int) -> None:
    committer = confluent_kafka.Consumer({**rdkafka_connection(settings), "group.id": group})
    try:
        committer.commit(offsets=[confluent_kafka.TopicPartition(partition.topic, partition.partition, offset)],
                         asynchronous=False)
    finally:
        committer.close()


class _PositionedInRevocation(ConsumerRebalanceListener):  # type: ignore[misc]
    """A revocation's listener that asks the position of a partition the consumer has not read (its committed
    offset: as wait_caught_up or a topic read, on the event loop while the fetch thread waits for the listener):
    the position it got within `wait_s`, None if none."""

    def __init__(self, wait_s: float) -> None:
        self.consumer: RdKafkaConsumer | None = None
        self.unread: TopicPartition | None = None
        self.wait_s = wait_s
        self.answered: list[int | None] = []

    async def on_partitions_revoked(self, revoked: Any) -> None:
        assert self.consumer is not None and self.unread is not None
        try:
            self.answered.append(await asyncio.wait_for(self.consumer.position(self.unread), self.wait_s))
        except TimeoutError:
            self.answered.append(None)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None


async def test_a_position_asked_while_a_rebalance_waits_for_the_loop_is_the_committed_offset(
        infra: dict[str, str], namespace: str) -> None:
    """The position of a partition not read yet (its group's committed offset) asked on the loop while the fetch
    thread is in a revocation waiting for the loop: it answers, never waits for the fetch thread's client."""
    settings = _settings(infra["kafka"], namespace)
    bus = Bus(settings)
    other = f"{bus.topics.requests}-other"
    await ensure_topics(settings.kafka_bootstrap, [bus.topics.requests, other], PARTITIONS)
    for i in range(4):
        await bus.send_record(bus.topics.requests, f"k{i}".encode(), _request(f"r{i}"), {})
    group = f"positioned-{namespace}"
    unread = TopicPartition(other, 0)
    listener = _PositionedInRevocation(wait_s=20)
    listener.unread = unread
    try:
        await asyncio.to_thread(_commit, settings, group, unread, 7)  # the group's offset of a partition not read
        await _second_member_joins(settings, group, bus.topics.requests, listener)
    finally:
        await bus.close()
    assert listener.answered[0] == 7


async def _second_member_joins(settings: FleetSettings, group: str, topic: str, listener: Any,
                               first_assigned: Callable[[RdKafkaConsumer], Awaitable[None]] | None = None) -> None:
    """Two members of `group` on `topic`, both fetching: the first (with `listener`, which sets `answered`) assigned
    every partition, then `first_assigned` of it, then the second joins; until the first member's revocation has
    answered."""
    members = [RdKafkaConsumer(settings, group_id=group, auto_offset_reset="earliest", fetch_max_wait_ms=100,
                               consumer_timeout_ms=200) for _ in range(2)]
    listener.consumer = members[0]
    members[0].subscribe([topic], listener=listener)
    members[1].subscribe([topic])
    fetching: list[asyncio.Future[Any]] = []

    async def fetch(member: RdKafkaConsumer) -> None:
        while True:
            await member.getone()

    try:
        await members[0].start()
        fetching.append(asyncio.ensure_future(fetch(members[0])))
        await _until(lambda: _is(len(members[0].assignment()) == PARTITIONS), "the first member assigned")
        if first_assigned is not None:
            await first_assigned(members[0])
        await members[1].start()
        fetching.append(asyncio.ensure_future(fetch(members[1])))
        await _until(lambda: _is(bool(listener.answered)), "the first member's revocation", limit_s=60)
    finally:
        for task in fetching:
            task.cancel()
        for member in members:
            await member.stop()
