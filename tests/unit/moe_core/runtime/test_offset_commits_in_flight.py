"""The commit notes of records handled concurrently (moe_core.runtime.offset_commits with moe_core.runtime.key_ordered):
a
partition's note never passes a record still in flight, whatever order the records finish in; a partition revoked
meanwhile starts a new generation and what its old records acknowledge afterwards is not noted; a transient
failure marks the record for a retry in place instead of seeking the consumer back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import TopicPartition

from moe_core.runtime.offset_commits import RETRY, OffsetCommits

pytestmark = pytest.mark.unit
TOPIC = "t"
TP = TopicPartition(TOPIC, 0)


@dataclass
class Record:
    offset: int
    topic: str = TOPIC
    partition: int = 0


class FakeConsumer:
    """What OffsetCommits uses of an AIOKafkaConsumer: its assignment, commit, seek and stop."""

    def __init__(self) -> None:
        self.committed: list[dict[TopicPartition, int]] = []
        self.sought: list[tuple[TopicPartition, int]] = []

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.committed.append(dict(offsets))

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.sought.append((tp, offset))

    async def stop(self) -> None:
        return None


async def _finish(commits: OffsetCommits, consumer: Any, record: Record) -> None:
    await commits.deferred(consumer, record).commit()


async def _noted(commits: OffsetCommits, consumer: FakeConsumer) -> int | None:
    await commits.flush(consumer)
    return consumer.committed[-1][TP] if consumer.committed else None


async def test_the_note_waits_for_the_lowest_record_in_flight() -> None:
    commits, consumer = OffsetCommits(0), FakeConsumer()
    records = [Record(offset) for offset in range(5)]
    for record in records:
        commits.begin(record)
    for offset in (1, 2, 4):
        await _finish(commits, consumer, records[offset])
    assert consumer.committed == []  # record 0 is still in flight: nothing to commit
    await _finish(commits, consumer, records[0])
    assert await _noted(commits, consumer) == 3  # up to record 3, still in flight
    await _finish(commits, consumer, records[3])
    assert await _noted(commits, consumer) == 5


async def test_after_a_revoke_the_old_generations_acknowledgements_are_not_noted() -> None:
    commits, consumer = OffsetCommits(0), FakeConsumer()
    old = [Record(offset) for offset in range(3)]
    for record in old:
        commits.begin(record)
    commits.revoked({TP})  # the partition went elsewhere (and may come back): its records are fetched again
    await _finish(commits, consumer, old[2])
    assert consumer.committed == []
    again = Record(0)  # fetched again from the last commit, in the new generation
    commits.begin(again)
    await _finish(commits, consumer, old[0])  # the old handling of the same offset ends late
    assert consumer.committed == []
    await _finish(commits, consumer, again)
    assert await _noted(commits, consumer) == 1


async def test_a_nack_marks_a_concurrent_record_for_retry_and_seeks_an_ordinary_one() -> None:
    commits, consumer = OffsetCommits(0), FakeConsumer()
    concurrent, ordinary = Record(7), Record(8)
    commits.begin(concurrent)
    commits.deferred(consumer, concurrent).seek(TP, 7)
    assert getattr(concurrent, RETRY) is True and consumer.sought == []
    commits.deferred(consumer, ordinary).seek(TP, 8)
    assert consumer.sought == [(TP, 8)] and not hasattr(ordinary, RETRY)
