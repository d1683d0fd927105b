"""Stream ids (gateway.stream_ids) and the replay order (gateway.stream_replay) without a broker: a stream
rendered again from the same bus events, cut after any event id, continues with exactly the frames the
first rendering sent after it; records read back topic by topic are fed in the interleaving an id names."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from gateway.pending import Event
from gateway.protocols.anthropic.routes import AnthropicFrames
from gateway.protocols.openai.routes import OpenAIFrames
from gateway.session import RequestRun
from gateway.stream import sse
from gateway.stream_ids import Position, StreamCursor, with_ids
from gateway.stream_replay import Replay
from moe_core.contracts import Answer, AnswerDelta, ChatMessage, ChatRequest, Progress, Topics, deadline_in
from moe_core.runtime.settings import FleetSettings

pytestmark = pytest.mark.unit
RID = "0123456789abcdef0123456789abcdef"
REQUEST = ChatRequest(response_id=RID, tenant_id="t", deadline_at=deadline_in(60), mode="moe-orchestrator",
                      messages=[ChatMessage(role="user", content="hi")], stream=True)


def _events() -> list[Event]:
    f = REQUEST.child_fields()
    return [Progress(**f, stage="planner", event="planned", detail="general"),
            AnswerDelta(**f, seq=0, channel="reasoning", content="Thinking."),
            Progress(**f, stage="expert-worker", event="answered"),
            AnswerDelta(**f, seq=0, content="Hello"),
            AnswerDelta(**f, seq=0, content="Hello"),  # redelivered: no frame, but consumed
            Progress(**f, stage="merger", event="late"),  # after content: no frame
            AnswerDelta(**f, seq=1, content=" world"),
            Answer(**f, mode="moe-orchestrator", content="Hello world.", reasoning="Thinking.")]


Renderer = Callable[[RequestRun], AsyncIterator[str]]
RENDERERS: dict[str, Renderer] = {
    "openai": lambda run: sse(run, OpenAIFrames(run, "reasoning_content", True)),
    "anthropic": lambda run: sse(run, AnthropicFrames(run, True)),
}


async def _render(renderer: Renderer, after: Position | None = None) -> list[str]:
    queue: asyncio.Queue[Event] = asyncio.Queue()
    for event in _events():
        queue.put_nowait(event)
    run = RequestRun(REQUEST, queue, grace_s=1, keepalive_s=30, on_close=lambda *_: None)
    return [frame async for frame in with_ids(renderer(run), run.cursor, after)]


def _id(frame: str) -> str:
    assert frame.startswith("id: ")
    return frame.split("\n", 1)[0][4:]


@pytest.mark.parametrize("api", list(RENDERERS))
async def test_a_resumed_rendering_sends_exactly_the_frames_after_the_id(api: str) -> None:
    full = await _render(RENDERERS[api])
    ids = [_id(frame) for frame in full]
    assert len(ids) == len(set(ids))
    for cut, last in enumerate(ids):
        position = Position.parse(last)
        assert position is not None and position.render() == last
        assert await _render(RENDERERS[api], position) == full[cut + 1:], last


def test_ids_name_the_consumed_events_and_reject_what_the_gateway_never_sent() -> None:
    cursor = StreamCursor(RID)
    for event in _events()[:4]:
        cursor.consume(event)
    cursor.frame = 2
    assert cursor.position().render() == f"{RID}.p1d1p1d1.2"
    assert Position.parse(f"{RID}.p1d1p1d1.2") == Position(RID, (("p", 1), ("d", 1), ("p", 1), ("d", 1)), 2)
    assert Position.parse(f"{RID}..0") == Position(RID, (), 0)
    assert Position.parse(f"{RID}.p2d3a1.1") == Position(RID, (("p", 2), ("d", 3), ("a", 1)), 1)
    for bad in ["", "x", f"{RID}.q1.0", f"{RID}.p0.0", f"{RID}.p1", "ABC.p1.0", f"{RID}.p1.0\nid: x",
                f"{RID}.p1p1.0", f"{RID}.a1p1.0", f"{RID}.a5.0", f"{RID}.p2a2.0", f"{RID}.a1a1.0"]:  # never rendered
        assert Position.parse(bad) is None, bad


async def test_records_read_back_by_topic_are_fed_in_the_interleaving_of_the_id() -> None:
    events = _events()
    settings = FleetSettings(topic_namespace="ns")
    topics = Topics.for_namespace("ns")
    topic = {Progress: topics.progress, AnswerDelta: topics.deltas, Answer: topics.answers}
    cursor = StreamCursor(RID)
    for event in events[:6]:
        cursor.consume(event)
    queue: asyncio.Queue[Event] = asyncio.Queue()
    replay = Replay(settings, REQUEST, cursor.position(), queue, lookback_s=0, linger_s=0)
    for kind in (Answer, AnswerDelta, Progress):  # one topic after the other, as a reader may get them
        for event in events:
            if type(event) is kind:
                replay._arrived(topic[kind], event.model_dump_json().encode())
    await replay._feed()
    fed = [queue.get_nowait() for _ in range(queue.qsize())]
    assert fed[:6] == events[:6]  # the client's interleaving
    assert fed[6:] == events[6:]  # then the rest, the Answer last
    assert replay.answered
