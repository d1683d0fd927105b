"""The Anthropic Messages API (/v1/messages) with the official anthropic SDK: stream and non-stream, the
exact event sequence, system prompts, errors in Anthropic's format, tool_use/tool_result round trips.

The tests drive a gateway alone through the real broker (BusDriver plays the backend); the journeys through the
whole fleet with scripted models are test_protocol_journeys.py's, written once for every protocol.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anthropic
import httpx
import pytest

from moe_core.contracts import ChatMessage, Usage
from tests.e2e.helpers import marker
from tests.support.bus_driver import BusDriver
from tests.support.fleet import ServiceProcess

pytestmark = pytest.mark.e2e
WEATHER_TOOL = {"name": "get_weather", "description": "Weather of a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                 "required": ["city"]}}


def _shape(event: Any) -> str:
    """An event as `type[:block or delta type]`, to compare sequences."""
    if event.type == "content_block_start":
        return f"content_block_start:{event.content_block.type}"
    if event.type == "content_block_delta":
        return f"content_block_delta:{event.delta.type}"
    return str(event.type)


async def test_non_stream_message_with_system_prompt(gw_anthropic: anthropic.AsyncAnthropic, driver: BusDriver) -> None:
    m = marker()
    task = asyncio.create_task(gw_anthropic.messages.create(
        model="moe-orchestrator", max_tokens=256, system="You are terse.",
        messages=[{"role": "user", "content": f"Capital of France? {m}"}]))
    request = await driver.request(m)
    assert [(x.role, x.content) for x in request.messages] == [
        ("system", "You are terse."), ("user", f"Capital of France? {m}")]
    assert request.params.max_tokens == 256 and request.stream is False
    await driver.answer(request, "Paris.", reasoning="One expert, high confidence.",
                        usage=Usage(prompt_tokens=20, completion_tokens=3))
    message = await task
    assert message.id == f"msg_{request.response_id}"
    assert (message.type, message.role, message.model) == ("message", "assistant", "moe-orchestrator")
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "One expert, high confidence."  # type: ignore[union-attr]
    assert message.content[1].text == "Paris."  # type: ignore[union-attr]
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    assert (message.usage.input_tokens, message.usage.output_tokens) == (20, 3)


async def test_system_prompt_as_blocks_and_history(gw_anthropic: anthropic.AsyncAnthropic, driver: BusDriver) -> None:
    m = marker()
    task = asyncio.create_task(gw_anthropic.messages.create(
        model="moe-orchestrator-report", max_tokens=64, thinking={"type": "disabled"},
        system=[{"type": "text", "text": "Rule one."}, {"type": "text", "text": "Rule two."}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "Earlier question"}]},
                  {"role": "assistant", "content": [{"type": "text", "text": "Earlier answer"}]},
                  {"role": "user", "content": [{"type": "text", "text": "Now"}, {"type": "text", "text": m}]}]))
    request = await driver.request(m)
    assert request.mode == "moe-orchestrator-report"
    assert [(x.role, x.content) for x in request.messages] == [
        ("system", "Rule one.\nRule two."), ("user", "Earlier question"), ("assistant", "Earlier answer"),
        ("user", f"Now\n{m}")]
    await driver.answer(request, "## Summary\nNow.", reasoning="hidden when thinking is disabled")
    message = await task
    assert [b.type for b in message.content] == ["text"]


async def test_stream_sends_the_exact_event_sequence(gw_anthropic: anthropic.AsyncAnthropic, driver: BusDriver) -> None:
    m = marker()
    stream = await gw_anthropic.messages.create(model="moe-orchestrator", max_tokens=128, stream=True,
                                                messages=[{"role": "user", "content": f"Stream {m}"}])
    events = aiter(stream)
    first = await anext(events)
    assert first.type == "message_start"
    assert first.message.id.startswith("msg_") and first.message.content == []
    request = await driver.request(m)
    await driver.progress(request, "planner", "planned", "general")
    seen = [await anext(events) for _ in range(2)]  # live: no Answer has been published yet
    await driver.delta(request, 0, "Weighing.", channel="reasoning")
    await driver.delta(request, 0, "Hel")
    seen += [await anext(events) for _ in range(4)]
    await driver.delta(request, 1, "lo")
    seen += [await anext(events)]
    await driver.answer(request, "Hello!", reasoning="Weighing.", usage=Usage(prompt_tokens=9, completion_tokens=4))
    seen += [event async for event in events]
    assert [_shape(e) for e in seen] == [
        "content_block_start:thinking", "content_block_delta:thinking_delta", "content_block_delta:thinking_delta",
        "content_block_stop",
        "content_block_start:text", "content_block_delta:text_delta", "content_block_delta:text_delta",
        "content_block_delta:text_delta", "content_block_stop",
        "message_delta", "message_stop"]
    assert [getattr(e, "index", None) for e in seen[:-2]] == [0, 0, 0, 0, 1, 1, 1, 1, 1]
    assert seen[1].delta.thinking == "planner: planned (general)\n"  # type: ignore[union-attr]
    assert seen[2].delta.thinking == "Weighing."  # type: ignore[union-attr]
    assert [e.delta.text for e in seen[5:8]] == ["Hel", "lo", "!"]  # type: ignore[union-attr]
    delta = seen[-2]
    assert (delta.delta.stop_reason, delta.usage.output_tokens, delta.usage.input_tokens) == ("end_turn", 4, 9)  # type: ignore[union-attr]


async def test_stream_helper_accumulates_the_final_message(gw_anthropic: anthropic.AsyncAnthropic,
                                                           driver: BusDriver) -> None:
    m = marker()
    async with gw_anthropic.messages.stream(model="moe-orchestrator", max_tokens=64,
                                            messages=[{"role": "user", "content": f"Answer {m}"}]) as stream:
        async for event in stream:  # the backend's next step waits until the client saw the previous one
            if event.type == "message_start":
                request = await driver.request(m)
                await driver.progress(request, "expert-worker", "answered", "general")
            elif event.type == "content_block_delta" and event.delta.type == "thinking_delta":
                await driver.delta(request, 0, "Forty")
            elif event.type == "text" and event.text == "Forty":
                await driver.answer(request, "Forty-two.", usage=Usage(prompt_tokens=5, completion_tokens=2))
        final = await stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "expert-worker: answered (general)\n"  # type: ignore[union-attr]
    assert final.content[1].text == "Forty-two."  # type: ignore[union-attr]
    assert (final.usage.input_tokens, final.usage.output_tokens, final.stop_reason) == (5, 2, "end_turn")


async def test_raw_stream_starts_with_message_start_and_ping(bare_gateway: ServiceProcess, api_key: str,
                                                             driver: BusDriver) -> None:
    m = marker()
    body = {"model": "claude-sonnet-4-5", "max_tokens": 32, "stream": True,  # Claude Code's own id
            "messages": [{"role": "user", "content": f"Raw {m}"}]}
    async with httpx.AsyncClient(timeout=30) as http, http.stream(
            "POST", f"{bare_gateway.url}/v1/messages", json=body, headers={"x-api-key": api_key}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()
        request = await driver.request(m)
        await driver.answer(request, "ok")
        raw = [line async for line in lines]
    names = [line.removeprefix("event: ") for line in raw if line.startswith("event: ")]
    datas = [json.loads(line.removeprefix("data: ")) for line in raw if line.startswith("data: ")]
    assert names[:2] == ["message_start", "ping"]
    assert datas[0]["message"]["model"] == "claude-sonnet-4-5"  # echoed as a non-streamed message echoes it
    assert [n for n in names[2:] if n != "ping"] == [  # pings: keep-alives while the answer was awaited
        "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    assert [d["type"] for d in datas] == names  # every event's data names its own type
    assert response.headers["request-id"] == request.response_id


async def test_deadline_mid_stream_is_an_error_event(bare_gateway: ServiceProcess, api_key: str,
                                                     driver: BusDriver) -> None:
    m = marker()
    client = anthropic.AsyncAnthropic(base_url=bare_gateway.url, api_key=api_key, max_retries=0,
                                      default_headers={"X-Request-Timeout": "0.5"})
    stream = await client.messages.create(model="moe-orchestrator", max_tokens=16, stream=True,
                                          messages=[{"role": "user", "content": f"Slow {m}"}])
    request = await driver.request(m)
    with pytest.raises(anthropic.APIStatusError) as err:
        async for _ in stream:
            pass
    assert err.value.body["error"]["type"] == "timeout_error"  # type: ignore[index]
    cancel = await driver.cancel(request.response_id)  # the gateway gave up: the fleet may stop too
    assert cancel.reason == "deadline"


# -- errors -----------------------------------------------------------------------------------------


async def test_a_wrong_key_is_an_authentication_error(bare_gateway: ServiceProcess) -> None:
    client = anthropic.AsyncAnthropic(base_url=bare_gateway.url, api_key="moe-nope-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as err:
        await client.messages.create(model="moe-orchestrator", max_tokens=8,
                                     messages=[{"role": "user", "content": "x"}])
    assert err.value.status_code == 401
    assert err.value.body == {"type": "error", "error": {"type": "authentication_error",
                                                         "message": "Incorrect API key provided."}}


async def test_an_unknown_model_is_not_found(gw_anthropic: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as err:
        # (claude-* ids are mapped to a mode: the model map, tests/e2e/gateway/test_anthropic_count_tokens.py)
        await gw_anthropic.messages.create(model="llama-nonexistent", max_tokens=8,
                                           messages=[{"role": "user", "content": "x"}])
    assert err.value.body["type"] == "error"  # type: ignore[index]
    assert err.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


@pytest.mark.parametrize(("body", "needle"), [
    ({"model": "moe-orchestrator", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
    ({"model": "moe-orchestrator", "max_tokens": 8, "messages": []}, "messages"),
    ({"model": "moe-orchestrator", "max_tokens": 8, "messages": [{"role": "system", "content": "x"}]}, "role"),
    ({"model": "moe-orchestrator", "max_tokens": 8, "temperature": 1.5,
      "messages": [{"role": "user", "content": "x"}]}, "temperature"),
    ({"model": "moe-orchestrator", "max_tokens": 8, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}]}]}, "image"),
    ({"model": "moe-orchestrator", "max_tokens": 8, "tool_choice": {"type": "tool", "name": "nope"},
      "tools": [WEATHER_TOOL], "messages": [{"role": "user", "content": "x"}]}, "tool_choice"),
    ([1, 2], "JSON object"),
])
async def test_malformed_requests_are_invalid_request_errors(bare_gateway: ServiceProcess, api_key: str,
                                                             body: object, needle: str) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(f"{bare_gateway.url}/v1/messages", json=body, headers={"x-api-key": api_key})
    assert response.status_code == 400
    payload = response.json()
    assert payload["type"] == "error" and payload["error"]["type"] == "invalid_request_error"
    assert needle in payload["error"]["message"]


async def test_invalid_json_and_missing_key(bare_gateway: ServiceProcess, api_key: str) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        bad = await http.post(f"{bare_gateway.url}/v1/messages", content=b"{nope", headers={"x-api-key": api_key})
        anonymous = await http.post(f"{bare_gateway.url}/v1/messages", json={})
    assert (bad.status_code, bad.json()["error"]["type"]) == (400, "invalid_request_error")
    assert (anonymous.status_code, anonymous.json()["error"]["type"]) == (401, "authentication_error")


async def test_bearer_auth_works_too(bare_gateway: ServiceProcess, api_key: str, driver: BusDriver) -> None:
    m = marker()
    client = anthropic.AsyncAnthropic(base_url=bare_gateway.url, auth_token=api_key, max_retries=0)
    task = asyncio.create_task(client.messages.create(
        model="moe-orchestrator", max_tokens=8, messages=[{"role": "user", "content": m}]))
    await driver.answer(await driver.request(m), "yes")
    assert (await task).content[0].text == "yes"  # type: ignore[union-attr]


async def test_models_are_listed_for_the_anthropic_sdk(gw_anthropic: anthropic.AsyncAnthropic) -> None:
    ids = [model.id async for model in gw_anthropic.models.list()]
    assert "moe-orchestrator" in ids and "moe-orchestrator-agent" in ids


# -- tools ------------------------------------------------------------------------------------------


async def test_tool_use_and_tool_result_map_to_the_internal_form_and_back(
        gw_anthropic: anthropic.AsyncAnthropic, driver: BusDriver) -> None:
    m = marker()
    history: list[Any] = [
        {"role": "user", "content": f"Weather in Paris and Rome? {m}"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "18 C, sunny"},
            {"type": "text", "text": "And Rome?"}]},
    ]
    task = asyncio.create_task(gw_anthropic.messages.create(
        model="moe-orchestrator-agent", max_tokens=128, tools=[WEATHER_TOOL], tool_choice={"type": "auto"},
        messages=history))
    request = await driver.request(m)
    assert request.tools == [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather of a city", "parameters": WEATHER_TOOL["input_schema"]}}]
    assert request.tool_choice == "auto"
    assert request.messages[1:] == [
        ChatMessage(role="assistant", content="Checking.", tool_calls=[{
            "id": "toolu_01A", "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})}}]),
        ChatMessage(role="tool", content="18 C, sunny", tool_call_id="toolu_01A"),
        ChatMessage(role="user", content="And Rome?"),
    ]
    await driver.answer(request, "", tool_calls=[{"id": "call_7", "type": "function", "function": {
        "name": "get_weather", "arguments": '{"city": "Rome"}'}}], usage=Usage(prompt_tokens=30, completion_tokens=1))
    message = await task
    assert message.stop_reason == "tool_use"
    assert [b.type for b in message.content] == ["tool_use"]
    block = message.content[0]
    assert (block.id, block.name, block.input) == ("call_7", "get_weather", {"city": "Rome"})  # type: ignore[union-attr]


async def test_streamed_tool_use_accumulates_its_input(gw_anthropic: anthropic.AsyncAnthropic,
                                                       driver: BusDriver) -> None:
    m = marker()

    async def drive() -> None:
        request = await driver.request(m)
        await driver.answer(request, "Let me look.", tool_calls=[
            {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}}])

    backend = asyncio.create_task(drive())
    async with gw_anthropic.messages.stream(model="moe-orchestrator-agent", max_tokens=64, tools=[WEATHER_TOOL],
                                            thinking={"type": "disabled"},
                                            messages=[{"role": "user", "content": f"Weather? {m}"}]) as stream:
        final = await stream.get_final_message()
    await backend
    assert final.stop_reason == "tool_use"
    assert [b.type for b in final.content] == ["text", "tool_use", "tool_use"]
    assert [(b.id, b.input) for b in final.content[1:]] == [  # type: ignore[union-attr]
        ("call_0", {"city": "Oslo"}), ("call_1", {"city": "Rome"})]
