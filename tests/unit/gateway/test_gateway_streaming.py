"""Gateway logic without a broker: reconciliation of streamed text with the final answer, the renderers'
event sequences (OpenAI chunks, Anthropic events), Anthropic <-> OpenAI tool mapping, and abandonment."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from gateway.protocols.anthropic.api import MessagesRequest, parse_messages_request
from gateway.protocols.anthropic.routes import AnthropicFrames
from gateway.protocols.openai.routes import OpenAIFrames
from gateway.session import ClientGone, RequestRun
from gateway.stream import sse
from gateway.tools import RAW_ARGUMENTS, arguments_object, arguments_string, openai_tool_choice
from gateway.transcript import REVISED_NOTE, Text, Transcript, remainder
from moe_core.contracts import Answer, AnswerDelta, ChatMessage, ChatRequest, Progress, Usage, deadline_in
from moe_core.runtime.openai_error import OpenAIError
from tests.support.scripted_llm import create_app as scripted_app

pytestmark = pytest.mark.unit


def _request(seconds: float = 30) -> ChatRequest:
    return ChatRequest(response_id="r1", tenant_id="t", deadline_at=deadline_in(seconds), mode="moe-orchestrator",
                       messages=[ChatMessage(role="user", content="hi")], stream=True)


def _fields() -> dict[str, Any]:
    return _request().child_fields()


def _delta(seq: int, content: str, channel: str = "content", stage: str = "merger") -> AnswerDelta:
    return AnswerDelta(**_fields(), seq=seq, content=content, channel=channel, stage=stage)  # type: ignore[arg-type]


def _progress(stage: str = "planner", event: str = "planned", detail: str = "general") -> Progress:
    return Progress(**_fields(), stage=stage, event=event, detail=detail)


@pytest.mark.parametrize(("streamed", "final", "rest", "revised"), [
    ("", "Whole answer.", "Whole answer.", False),
    ("Hello wor", "Hello world.", "ld.", False),
    (" Hello", "Hello world.", " world.", False),  # the judge's leading space, stripped in the final text
    ("Hello \n", "Hello", "", False),  # trailing whitespace the final text does not have
    ("Hello ", "Hello\nworld", "world", False),
    ("Take ten", "Take one.", REVISED_NOTE + "Take one.", True),
])
def test_remainder(streamed: str, final: str, rest: str, revised: bool) -> None:
    assert remainder(streamed, final) == (rest, revised)


def test_an_answer_that_arrives_before_any_progress_opens_with_a_summary_line() -> None:
    """A cache hit, or a fast-path Answer that overtook its progress events (separate topics): the
    stream still opens with its reasoning, one line of how it was answered."""
    hit = Answer(**_fields(), mode="moe-orchestrator", content="Paris.", cache_hit=True, experts_used=["general"])
    texts, _ = Transcript().finish(hit)
    assert [(t.channel, t.text) for t in texts] == [("reasoning", "answered from the cache\n"), ("content", "Paris.")]
    fast = hit.model_copy(update={"cache_hit": False})
    texts, _ = Transcript().finish(fast)
    assert texts[0] == Text("reasoning", "answered by: general\n")
    shown = Transcript()  # live progress was shown: no summary
    shown.progress(_progress())
    assert [t.channel for t in shown.finish(fast)[0]] == ["content"]


def test_transcript_dedupes_by_stage_channel_seq_and_drops_reasoning_after_text() -> None:
    t = Transcript()
    assert t.progress(_progress()) != []
    shown = [t.delta(d) for d in (_delta(0, "why", "reasoning"), _delta(0, "A"), _delta(0, "A"), _delta(1, "B"),
                                  _delta(0, "critic", stage="critic"))]
    assert [[x.text for x in texts] for texts in shown] == [["why"], ["A"], [], ["B"], ["critic"]]
    assert t.content == "ABcritic" and t.reasoning == "why"
    assert t.progress(_progress("expert-worker", "answered")) == []  # after answer text: not shown
    assert t.delta(_delta(1, "late", "reasoning")) == []
    texts, revised = t.finish(Answer(**_fields(), mode="m", content="ABcritic!", reasoning="why and more"))
    assert [(x.channel, x.text) for x in texts] == [("content", "!")] and not revised


def test_a_progress_line_never_cuts_a_reasoning_line() -> None:
    """Progress and deltas travel on separate topics: the judge's progress can arrive while an expert's
    thinking line is still open. It waits for the end of that line, and is dropped once answer text began."""
    t = Transcript()
    shown = [*t.delta(_delta(0, "Both point to the", "reasoning", stage="expert-worker")),
             *t.progress(_progress("merger", "judging", "2 results")),
             *t.delta(_delta(1, " Moon.\n", "reasoning", stage="expert-worker")),
             *t.progress(_progress("critic", "checking", ""))]
    assert "".join(x.text for x in shown) == "Both point to the Moon.\nmerger: judging (2 results)\ncritic: checking\n"
    assert t.reasoning == "Both point to the Moon.\n"  # progress lines are not part of the reasoning trace
    t.delta(_delta(2, "Open", "reasoning", stage="expert-worker"))
    assert t.progress(_progress("merger", "judged")) == []  # held: the line is open
    assert [x.text for x in t.delta(_delta(0, "Yes."))] == ["Yes."]  # answer text: the held line is dropped
    assert t.delta(_delta(3, " line\n", "reasoning", stage="expert-worker")) == []


async def _collect(stream: Any, events: list[Any]) -> list[str]:
    run: RequestRun = stream.run
    for event in events:
        run.queue.put_nowait(event)
    return [frame async for frame in sse(run, stream)]


def _run(closed: list[tuple[str, str | None]], seconds: float = 30, keepalive_s: float = 5) -> RequestRun:
    return RequestRun(_request(seconds), asyncio.Queue(), grace_s=0, keepalive_s=keepalive_s,
                      on_close=lambda r, why: closed.append((r.response_id, why)))


def _anthropic_events(frames: list[str]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for frame in frames:
        name, data = frame.strip().split("\n")
        out.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return out


async def test_anthropic_stream_opens_and_closes_blocks_in_order() -> None:
    closed: list[tuple[str, str | None]] = []
    answer = Answer(**_fields(), mode="moe-orchestrator", content="Hi!",
                    usage=Usage(prompt_tokens=3, completion_tokens=2),
                    tool_calls=[{"id": "c1", "function": {"name": "f", "arguments": "not json"}}])
    frames = await _collect(AnthropicFrames(_run(closed), thinking=True),
                            [_progress(), _delta(0, "Hi"), answer])
    events = _anthropic_events(frames)
    assert [n for n, _ in events] == [
        "message_start", "ping", "content_block_start", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    starts = [d["content_block"] for n, d in events if n == "content_block_start"]
    assert [b["type"] for b in starts] == ["thinking", "text", "tool_use"]
    assert starts[2] == {"type": "tool_use", "id": "c1", "name": "f", "input": {}}
    assert json.loads(events[10][1]["delta"]["partial_json"]) == {RAW_ARGUMENTS: "not json"}
    assert events[12][1] == {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                             "usage": {"input_tokens": 3, "output_tokens": 2}}
    assert closed == [("r1", None)]  # answered: nothing to cancel


async def test_anthropic_stream_without_thinking_and_a_deadline_error() -> None:
    closed: list[tuple[str, str | None]] = []
    frames = await _collect(AnthropicFrames(_run(closed, seconds=0.05), thinking=False), [_progress()])
    events = _anthropic_events(frames)
    assert [n for n, _ in events] == ["message_start", "ping", "error"]
    assert events[-1][1]["error"]["type"] == "timeout_error"
    assert closed == [("r1", "deadline")]


async def test_openai_think_format_and_keep_alives() -> None:
    closed: list[tuple[str, str | None]] = []
    run = _run(closed, keepalive_s=0.01)
    frames = sse(run, OpenAIFrames(run, "think", include_usage=False))
    first = await anext(frames)
    assert json.loads(first.removeprefix("data: "))["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert await anext(frames) == ": keep-alive\n"  # nothing arrived yet
    for event in (_progress(), _delta(0, "Hey"), Answer(**_fields(), mode="m", content="Hey.")):
        run.queue.put_nowait(event)
    rest = [f async for f in frames]
    data = [json.loads(f.removeprefix("data: ")) for f in rest if f.startswith("data: {")]
    text = "".join(d["choices"][0]["delta"].get("content", "") for d in data if d["choices"])
    assert text == "<think>\nplanner: planned (general)\n\n</think>\n\nHey."
    assert rest[-1] == "data: [DONE]\n\n"


async def test_an_abandoned_stream_is_closed_as_client_disconnected() -> None:
    closed: list[tuple[str, str | None]] = []
    run = _run(closed)
    frames = sse(run, OpenAIFrames(run, "reasoning_content", include_usage=False))
    await anext(frames)
    await frames.aclose()  # what the server does when the client goes away
    assert closed == [("r1", "client_disconnected")]


async def test_a_client_gone_before_the_answer_raises() -> None:
    closed: list[tuple[str, str | None]] = []
    run = _run(closed)
    gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    gone.set_result(None)
    with pytest.raises(ClientGone):
        await run.answer(gone)
    run.close()
    run.close()
    assert closed == [("r1", "client_disconnected")]


def test_anthropic_messages_map_to_the_internal_form() -> None:
    body = parse_messages_request({
        "model": "moe-orchestrator", "max_tokens": 99999, "system": [{"type": "text", "text": "S"}],
        "tool_choice": {"type": "any"}, "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": ""},
                                              {"type": "tool_use", "id": "u1", "name": "f", "input": {"a": [1]}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "u1", "is_error": True,
                                          "content": [{"type": "text", "text": "boom"}]}]},
        ]})
    assert isinstance(body, MessagesRequest)
    assert body.params().max_tokens == 32768
    assert body.openai_tool_choice() == "required"
    assert body.tool_defs() == [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    assert body.chat_messages() == [
        ChatMessage(role="system", content="S"), ChatMessage(role="user", content="q"),
        ChatMessage(role="assistant", content="", tool_calls=[
            {"id": "u1", "type": "function", "function": {"name": "f", "arguments": '{"a": [1]}'}}]),
        ChatMessage(role="tool", content="[tool error] boom", tool_call_id="u1"),
    ]
    with pytest.raises(OpenAIError, match="document"):
        parse_messages_request({"model": "m", "max_tokens": 1, "messages": [
            {"role": "user", "content": [{"type": "document", "source": {}}]}]}).chat_messages()


@pytest.mark.parametrize(("raw", "back"), [('{"city": "Oslo"}', '{"city": "Oslo"}'), ("[1, 2]", "[1, 2]"),
                                           ("not json", "not json"), ("", "{}")])
def test_tool_arguments_survive_the_anthropic_round_trip(raw: str, back: str) -> None:
    assert arguments_string(arguments_object(raw)) == back


def test_tool_choice_mapping() -> None:
    assert [openai_tool_choice(c) for c in (None, {"type": "auto"}, {"type": "any"}, {"type": "none"},
                                            {"type": "tool", "name": "f"})] == [
        None, "auto", "required", "none", {"type": "function", "function": {"name": "f"}}]


async def test_scripted_server_marks_a_streamed_reply_completed_only_at_its_end() -> None:
    app = scripted_app({"models": ["m"], "rules": [{"reply": "one two three", "token_delay_ms": 1}]})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as http:
        await http.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
        await http.post("/v1/chat/completions", json={"model": "m", "stream": True,
                                                      "messages": [{"role": "user", "content": "x"}]})
    calls = app.state.scripted.get_calls()
    assert [(c["stream"], c["completed"], c["cancelled"]) for c in calls] == [(False, True, False), (True, True, False)]
