"""OpenAI tools / tool_calls passthrough with the official openai SDK: definitions and tool results reach
the fleet intact, the model's tool calls come back with finish_reason "tool_calls" (stream and not).

The first tests drive a gateway alone through the real broker (BusDriver plays the backend); the last one goes
through the whole fleet (the tool round trip through the expert model is test_protocol_journeys.py's, for every
protocol).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import openai
import pytest

from moe_core.contracts import ChatMessage, Usage
from tests.conftest import Scripted
from tests.e2e.helpers import marker, plan_reply
from tests.support.bus_driver import BusDriver
from tests.support.fleet import ServiceProcess

pytestmark = pytest.mark.e2e
WEATHER: dict[str, Any] = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
CALLS = [{"id": "call_a1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
         {"id": "call_b2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}}]


async def test_tools_and_tool_messages_reach_the_fleet_intact(gw: openai.AsyncOpenAI, driver: BusDriver) -> None:
    m = marker()
    task = asyncio.create_task(gw.chat.completions.create(
        model="moe-orchestrator-agent", tools=[WEATHER], tool_choice={"type": "function", "function": {
            "name": "get_weather"}},
        messages=[{"role": "user", "content": f"Weather in Oslo? {m}"},
                  {"role": "assistant", "content": None, "tool_calls": CALLS[:1]},
                  {"role": "tool", "tool_call_id": "call_a1", "content": "3 C"}]))
    request = await driver.request(m)
    assert request.tools == [WEATHER]
    assert request.tool_choice == {"type": "function", "function": {"name": "get_weather"}}
    assert request.messages[1:] == [ChatMessage(role="assistant", content="", tool_calls=CALLS[:1]),
                                    ChatMessage(role="tool", content="3 C", tool_call_id="call_a1")]
    await driver.answer(request, "It is 3 C in Oslo.", usage=Usage(prompt_tokens=12, completion_tokens=6))
    response = await task
    assert response.choices[0].message.content == "It is 3 C in Oslo."
    assert response.choices[0].message.tool_calls is None
    assert response.choices[0].finish_reason == "stop"


async def test_tool_calls_come_back_with_finish_reason_tool_calls(gw: openai.AsyncOpenAI, driver: BusDriver) -> None:
    m = marker()
    task = asyncio.create_task(gw.chat.completions.create(
        model="moe-orchestrator-agent", tools=[WEATHER],
        messages=[{"role": "user", "content": f"Weather in Oslo and Rome? {m}"}]))
    request = await driver.request(m)
    await driver.answer(request, "", tool_calls=CALLS, usage=Usage(prompt_tokens=12, completion_tokens=1))
    response = await task
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert [c.model_dump() for c in choice.message.tool_calls or []] == CALLS  # ids and arguments untouched
    assert response.usage is not None and response.usage.total_tokens == 13


async def test_streamed_tool_calls_accumulate_with_the_sdk(gw: openai.AsyncOpenAI, driver: BusDriver) -> None:
    m = marker()
    stream = await gw.chat.completions.create(
        model="moe-orchestrator-agent", tools=[WEATHER], stream=True,
        messages=[{"role": "user", "content": f"Weather? {m}"}])
    request = await driver.request(m)
    await driver.answer(request, "", tool_calls=CALLS)
    chunks = [chunk async for chunk in stream]
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            entry = calls.setdefault(delta.index, {"id": None, "name": "", "arguments": ""})
            entry["id"] = delta.id or entry["id"]
            entry["name"] += delta.function.name or "" if delta.function else ""
            entry["arguments"] += delta.function.arguments or "" if delta.function else ""
    assert [(c["id"], c["name"], json.loads(c["arguments"])) for c in calls.values()] == [
        ("call_a1", "get_weather", {"city": "Oslo"}), ("call_b2", "get_weather", {"city": "Rome"})]
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


@pytest.mark.parametrize(("body", "needle"), [
    ({"messages": [{"role": "user", "content": "x"}, {"role": "tool", "content": "3 C"}]}, "tool_call_id"),
    ({"messages": [{"role": "user", "content": "x", "tool_calls": CALLS}]}, "tool_calls"),
    ({"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER],
      "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "nope"),
    ({"messages": [{"role": "user", "content": "x"}], "tool_choice": "required"}, "required"),
    ({"messages": [{"role": "user", "content": "x"}],
      "tools": [{"type": "function", "function": {"name": "bad name"}}]}, "tools"),
    ({"messages": [{"role": "user", "content": "x"}], "metadata": {"reasoning_format": "loud"}}, "reasoning_format"),
])
async def test_malformed_tool_requests_are_400(bare_gateway: ServiceProcess, api_key: str, body: dict[str, Any],
                                               needle: str) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(f"{bare_gateway.url}/v1/chat/completions",
                                   json={"model": "moe-orchestrator", **body},
                                   headers={"Authorization": f"Bearer {api_key}"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and needle in error["message"]


# -- through the whole fleet (scripted models) -------------------------------------------------------


async def test_a_required_tool_call_the_model_does_not_make_is_an_error_not_text(
        base_url: str, api_key: str, scripted: Scripted) -> None:
    """tool_choice "required" (or a named function) promises the client a tool call: the models answering with
    text is a 422 tool_choice_unmet, never a text answer with finish_reason "stop" (a new user's trial got the
    text from the embedded model); streamed, no text reaches the client before the error."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=60)
    m = marker()
    scripted.script([{"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Weather {m}"))},
                     {"model": "expert-model", "contains": m, "reply": "It is probably sunny.\nCONFIDENCE: high"}])
    question = [{"role": "user", "content": f"Weather in Oslo? {m}"}]
    with pytest.raises(openai.APIStatusError) as refused:
        await client.chat.completions.create(model="moe-orchestrator", tools=[WEATHER], messages=question,
                                             tool_choice="required")
    assert (refused.value.status_code, refused.value.code) == (422, "tool_choice_unmet")
    assert "without calling a tool" in refused.value.message
    texts = []
    with pytest.raises(openai.APIError) as streamed:
        async for chunk in await client.chat.completions.create(
                model="moe-orchestrator", tools=[WEATHER], messages=question, stream=True,
                tool_choice={"type": "function", "function": {"name": "get_weather"}}):
            texts += [c.delta.content for c in chunk.choices if c.delta.content]
    assert "get_weather" in str(streamed.value) and texts == []
