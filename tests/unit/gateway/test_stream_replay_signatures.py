"""A resumed stream's read-back (gateway.stream_replay) counts a record only with a declared producer's signature, as
the live subscriptions do: a progress event, a delta or an Answer that the check refuses is never fed to the
renderer, and the position a client names is matched against the proven records only."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from gateway.pending import Event
from gateway.stream_ids import Position
from gateway.stream_replay import Replay
from moe_core.contracts import Answer, AnswerDelta, ChatMessage, ChatRequest, Progress, Topics, deadline_in
from moe_core.runtime.settings import FleetSettings

pytestmark = pytest.mark.unit
RID = "0123456789abcdef0123456789abcdef"


@dataclass
class Record:  # the fields of a Kafka ConsumerRecord the read-back uses
    topic: str
    key: bytes
    value: bytes
    forged: bool = False


async def test_a_record_read_back_is_fed_only_when_its_producer_is_proven(namespace: str) -> None:
    settings = FleetSettings(topic_namespace=namespace)
    topics = Topics.for_namespace(namespace)
    request = ChatRequest(response_id=RID, tenant_id="t", deadline_at=deadline_in(30), mode="moe-orchestrator",
                          messages=[ChatMessage(role="user", content="Hi")])
    checked: list[tuple[str, bool]] = []

    async def proven(record: Any, topic: str) -> bool:  # Bus.proven_record's verdict, decided by the test
        checked.append((topic, not record.forged))
        return not record.forged

    queue: asyncio.Queue[Event] = asyncio.Queue()
    position = Position.parse(f"{RID}.p1d1.0")  # the client saw one progress event, then one delta
    assert position is not None
    replay = Replay(settings, request, position, queue, lookback_s=0, linger_s=0, proven=proven)
    fields = request.child_fields()

    def record(topic: str, event: Any, forged: bool = False) -> Record:
        return Record(topic, RID.encode(), event.model_dump_json().encode(), forged)

    batch = [record(topics.progress, Progress(**fields, stage="planner", event="planned", detail="FORGED"), True),
             record(topics.deltas, AnswerDelta(**fields, seq=0, content="FORGED"), True),
             record(topics.answers, Answer(**fields, mode=request.mode, content="FORGED"), True),
             record(topics.progress, Progress(**fields, stage="planner", event="planned", detail="general")),
             record(topics.deltas, AnswerDelta(**fields, seq=0, content="Hello")),
             record(topics.answers, Answer(**fields, mode=request.mode, content="Hello."))]
    await replay._take({"p": batch})  # type: ignore[dict-item]
    fed = []
    while not queue.empty():
        fed.append(queue.get_nowait())
    assert [type(e).__name__ for e in fed] == ["Progress", "AnswerDelta", "Answer"]
    assert "FORGED" not in repr(fed) and not replay.path and replay.answered
    assert [topic for topic, _ in checked] == [r.topic for r in batch]  # every topic's records are checked
