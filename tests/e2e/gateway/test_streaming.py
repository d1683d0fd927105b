"""Live streaming with the official openai SDK: progress as reasoning, tokens as they arrive, keep-alives,
reconciliation with the final answer, and cancel on disconnect.

The first tests drive a gateway alone through the real broker (BusDriver plays the backend, so the order
of events is under the test's control: progress, deltas and answers travel on different topics, so a
test waits until the client saw one before it publishes on another topic); the last ones run through
the whole fleet with scripted models.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import openai
import pytest

from moe_core.contracts import Usage
from tests.conftest import Scripted
from tests.e2e.gateway_fixtures import KEEPALIVE_S
from tests.e2e.helpers import calls_for, marker, plan_reply
from tests.support.bus_driver import BusDriver
from tests.support.fleet import ServiceProcess
from tests.support.moe_fields import moe

pytestmark = pytest.mark.e2e
REVISED_NOTE = "\n\n[revised answer]\n\n"


def _reasoning(chunk: Any) -> str:
    return getattr(chunk.choices[0].delta, "reasoning_content", None) or "" if chunk.choices else ""


def _content(chunk: Any) -> str:
    return (chunk.choices[0].delta.content or "") if chunk.choices else ""


async def _until(stream: Any, predicate: Any) -> list[Any]:
    """Read chunks until one satisfies `predicate`; returns the chunks read."""
    seen = []
    async for chunk in stream:
        seen.append(chunk)
        if predicate(chunk):
            return seen
    raise AssertionError(f"stream ended before the expected chunk; got {seen}")


async def test_progress_streams_as_reasoning_and_tokens_before_the_answer_exists(
        gw: openai.AsyncOpenAI, driver: BusDriver) -> None:
    m = marker()
    stream = await gw.chat.completions.create(
        model="moe-orchestrator", messages=[{"role": "user", "content": f"Greet {m}"}], stream=True,
        stream_options={"include_usage": True})
    request = await driver.request(m)
    assert request.stream is True
    await driver.progress(request, "planner", "planned", "general, math")
    seen = await _until(stream, lambda c: "planned" in _reasoning(c))
    assert _reasoning(seen[-1]) == "planner: planned (general, math)\n"
    await driver.delta(request, 0, "Thinking about greetings.", channel="reasoning")
    await driver.delta(request, 0, "Hello")
    seen += await _until(stream, lambda c: _content(c) == "Hello")  # before any Answer was published
    await driver.delta(request, 1, " world")
    await driver.delta(request, 1, " world")  # a redelivered delta: same seq, shown once
    await driver.answer(request, "Hello world.", reasoning="Thinking about greetings.",
                        usage=Usage(prompt_tokens=11, completion_tokens=7))
    seen += [chunk async for chunk in stream]
    assert "".join(_content(c) for c in seen) == "Hello world."
    reasoning = "".join(_reasoning(c) for c in seen)
    assert reasoning == "planner: planned (general, math)\nThinking about greetings."
    assert [c.choices[0].finish_reason for c in seen if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert seen[-1].choices == [] and seen[-1].usage is not None
    assert (seen[-1].usage.prompt_tokens, seen[-1].usage.completion_tokens, seen[-1].usage.total_tokens) == (11, 7, 18)
    assert {c.id for c in seen} == {f"chatcmpl-{request.response_id}"}


async def test_think_format_puts_progress_in_a_think_block(gw: openai.AsyncOpenAI, driver: BusDriver) -> None:
    m = marker()
    stream = await gw.chat.completions.create(
        model="moe-orchestrator-concise", messages=[{"role": "user", "content": f"Hi {m}"}], stream=True,
        metadata={"reasoning_format": "think"})
    request = await driver.request(m)
    assert request.mode == "moe-orchestrator-concise"
    await driver.progress(request, "planner", "planned", "general")
    chunks = await _until(stream, lambda c: "planned" in _content(c))
    await driver.delta(request, 0, "Hi")
    await driver.answer(request, "Hi there.")
    chunks += [chunk async for chunk in stream]
    assert all(_reasoning(c) == "" for c in chunks)
    assert "".join(_content(c) for c in chunks) == "<think>\nplanner: planned (general)\n\n</think>\n\nHi there."


async def test_non_stream_answer_carries_the_reasoning(gw: openai.AsyncOpenAI, driver: BusDriver) -> None:
    m = marker()
    task = asyncio.create_task(gw.chat.completions.create(
        model="moe-orchestrator", messages=[{"role": "user", "content": f"Why {m}"}]))
    request = await driver.request(m)
    assert request.stream is False
    await driver.progress(request, "planner", "planned", "general")  # progress is not part of a JSON answer
    await driver.answer(request, "Because.", reasoning="Two experts agree.")
    response = await task
    assert response.choices[0].message.content == "Because."
    assert response.choices[0].message.reasoning_content == "Two experts agree."  # type: ignore[attr-defined]


async def test_a_revised_answer_follows_the_streamed_text_with_a_note(
        gw: openai.AsyncOpenAI, driver: BusDriver) -> None:
    m = marker()
    stream = await gw.chat.completions.create(
        model="moe-orchestrator", messages=[{"role": "user", "content": f"Dose {m}"}], stream=True)
    request = await driver.request(m)
    await driver.delta(request, 0, "Take ten")
    chunks = await _until(stream, lambda c: _content(c) == "Take ten")
    await driver.answer(request, "Take one tablet.")  # e.g. the critic corrected the judge's text
    chunks += [chunk async for chunk in stream]
    assert "".join(_content(c) for c in chunks) == "Take ten" + REVISED_NOTE + "Take one tablet."
    final = next(c for c in chunks if c.choices and c.choices[0].finish_reason)
    assert moe(final)["revised"] is True


async def test_keep_alive_comments_during_a_long_wait(bare_gateway: ServiceProcess, api_key: str,
                                                      driver: BusDriver) -> None:
    m = marker()
    body = {"model": "moe-orchestrator", "stream": True, "messages": [{"role": "user", "content": f"Wait {m}"}]}
    async with httpx.AsyncClient(timeout=30) as http, http.stream(
            "POST", f"{bare_gateway.url}/v1/chat/completions", json=body,
            headers={"Authorization": f"Bearer {api_key}"}) as response:
        lines = response.aiter_lines()
        request = await driver.request(m)
        async for line in lines:  # nothing was published: the silence is filled with comments
            if line.startswith(":"):
                assert line == ": keep-alive"
                break
            assert not line.startswith("data: ") or '"role":"assistant"' in line
        await driver.answer(request, "Done waiting.")
        rest = [line async for line in lines if line]
    assert rest[-1] == "data: [DONE]"
    assert any("Done waiting." in line for line in rest)


async def test_the_sdk_reads_keep_alives_after_events_with_ids(gw: openai.AsyncOpenAI,
                                                                driver: BusDriver) -> None:
    """Every event carries an id (resumable streams). A client that has seen an id dispatches an event at
    every blank line, data or not (the SSE spec keeps the last id): a keep-alive with a blank line after it
    made the official SDK parse empty data and fail. Keep-alives are single comment lines."""
    m = marker()
    stream = await gw.chat.completions.create(
        model="moe-orchestrator", messages=[{"role": "user", "content": f"Wait a while {m}"}], stream=True)
    request = await driver.request(m)
    await driver.progress(request, "planner", "planned", "general")
    seen = await _until(stream, lambda c: "planned" in _reasoning(c))
    await asyncio.sleep(KEEPALIVE_S * 3)  # silence: keep-alives after an event with an id
    await driver.answer(request, "Still here.")
    seen += [chunk async for chunk in stream]
    assert "".join(_content(c) for c in seen) == "Still here."


async def _pending(gateway: ServiceProcess) -> float:
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{gateway.url}/metrics")).text
    line = next(x for x in text.splitlines() if x.startswith("moe_gateway_pending_requests "))
    return float(line.split()[1])


async def test_disconnect_mid_stream_publishes_cancel_and_frees_the_request(
        gw: openai.AsyncOpenAI, driver: BusDriver, bare_gateway: ServiceProcess) -> None:
    m = marker()
    stream = await gw.chat.completions.create(
        model="moe-orchestrator", messages=[{"role": "user", "content": f"Leave {m}"}], stream=True)
    request = await driver.request(m)
    await driver.delta(request, 0, "Partial")
    await _until(stream, lambda c: _content(c) == "Partial")
    await stream.close()  # the client goes away mid-answer
    cancel = await driver.cancel(request.response_id)
    assert (cancel.reason, cancel.tenant_id) == ("client_disconnected", request.tenant_id)
    assert await _pending(bare_gateway) == 0


async def test_disconnect_while_waiting_for_a_json_answer_publishes_cancel(
        bare_gateway: ServiceProcess, api_key: str, driver: BusDriver) -> None:
    m = marker()
    body = {"model": "moe-orchestrator", "messages": [{"role": "user", "content": f"Gone {m}"}]}

    async def ask() -> None:
        async with httpx.AsyncClient(timeout=30) as http:
            await http.post(f"{bare_gateway.url}/v1/chat/completions", json=body,
                            headers={"Authorization": f"Bearer {api_key}"})

    asker = asyncio.create_task(ask())
    request = await driver.request(m)
    asker.cancel()  # closes the connection before any answer
    cancel = await driver.cancel(request.response_id)
    assert cancel.reason == "client_disconnected"
    assert await _pending(bare_gateway) == 0


async def test_an_answered_stream_publishes_no_cancel(gw: openai.AsyncOpenAI, driver: BusDriver) -> None:
    m, other = marker(), marker()
    stream = await gw.chat.completions.create(
        model="moe-orchestrator", messages=[{"role": "user", "content": f"Fine {m}"}], stream=True)
    request = await driver.request(m)
    await driver.answer(request, "All good.")
    assert "".join([_content(c) async for c in stream]) == "All good."
    # A later request that is abandoned: its Cancel arrives, and none ever came for the answered one.
    later = await gw.chat.completions.create(
        model="moe-orchestrator", messages=[{"role": "user", "content": f"Drop {other}"}], stream=True)
    dropped = await driver.request(other)
    await later.close()
    await driver.cancel(dropped.response_id)
    assert request.response_id not in {c.response_id for c in driver.cancels}


# -- through the whole fleet (scripted models) -------------------------------------------------------


@pytest.fixture
def client(base_url: str, api_key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=60)


def _judge_call(scripted: Scripted, marker: str) -> dict[str, Any] | None:
    """The judge's call (not the merger's thinking step, which runs first on the same model)."""
    return next((c for c in calls_for(scripted.calls("judge-model"), marker)
                 if THINKING not in c["messages"][0]["content"]), None)


JUDGE_WORDS = " ".join(f"word{i}" for i in range(30))
THINKING = "think briefly"  # in the system prompt of the merger's thinking step (two tasks: it runs first)


def _two_experts_slow_judge(scripted: Scripted, m: str, token_delay_ms: int) -> None:
    scripted.script([
        {"model": "planner-model", "contains": m,
         "reply": plan_reply(("general", f"Part one {m}"), ("science", f"Part two {m}"))},
        {"model": "expert-model", "contains": f"Part one {m}", "reply": "One.\nCONFIDENCE: medium"},
        {"model": "expert-model", "contains": f"Part two {m}", "reply": "Two.\nCONFIDENCE: medium"},
        {"model": "judge-model", "contains": m, "system_contains": THINKING, "reply": "Both parts agree."},
        {"model": "judge-model", "contains": m, "reply": JUDGE_WORDS, "token_delay_ms": token_delay_ms},
    ])


async def test_first_token_reaches_the_client_while_the_judge_is_still_generating(
        client: openai.AsyncOpenAI, scripted: Scripted) -> None:
    m = marker()
    _two_experts_slow_judge(scripted, m, token_delay_ms=150)  # about 4.5 s of generation
    stream = await client.chat.completions.create(
        model="moe-orchestrator", messages=[{"role": "user", "content": f"Two parts {m}"}], stream=True)
    seen = await _until(stream, lambda c: _content(c) != "")
    judge = _judge_call(scripted, m)
    assert judge is not None and judge["stream"] is True
    assert judge["completed"] is False  # the client has a token; the judge has not finished generating
    seen += [chunk async for chunk in stream]
    judge = _judge_call(scripted, m)
    assert judge is not None and judge["completed"] is True
    assert "".join(_content(c) for c in seen) == JUDGE_WORDS
    assert "planner: planned" in "".join(_reasoning(c) for c in seen)  # progress arrived as reasoning


async def test_disconnect_mid_stream_stops_the_judge(client: openai.AsyncOpenAI, scripted: Scripted) -> None:
    m = marker()
    _two_experts_slow_judge(scripted, m, token_delay_ms=300)
    stream = await client.chat.completions.create(
        model="moe-orchestrator", messages=[{"role": "user", "content": f"Two parts {m}"}], stream=True)
    await _until(stream, lambda c: _content(c) != "")
    await stream.close()
    loop = asyncio.get_running_loop()
    end = loop.time() + 20  # the judge would need 30 x 0.3 s = 9 s more to finish on its own
    while not ((judge := _judge_call(scripted, m)) and (judge["cancelled"] or judge["completed"])):
        assert loop.time() < end, "the judge call neither stopped nor finished"
        await asyncio.sleep(0.05)
    assert judge["cancelled"] is True and judge["completed"] is False
