"""Anthropic completeness with the official anthropic SDK: `messages.count_tokens`, the model map (client
model ids such as Claude Code's `claude-sonnet-4-5` select a mode), stop_sequences. A gateway alone on
the real broker; a BusDriver plays the fleet."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import pytest

from gateway.protocols.anthropic.token_count import count_text
from tests.e2e.helpers import marker
from tests.support.bus_driver import BusDriver
from tests.support.fleet import ServiceProcess

pytestmark = pytest.mark.e2e
WEATHER_TOOL = {"name": "get_weather", "description": "Weather of a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


async def test_count_tokens_counts_system_messages_and_tools(gw_anthropic: anthropic.AsyncAnthropic) -> None:
    question = [{"role": "user", "content": "What is 17% of 2340?"}]
    bare = await gw_anthropic.messages.count_tokens(model="claude-sonnet-4-6", messages=question)  # type: ignore[arg-type]
    assert bare.input_tokens == count_text("What is 17% of 2340?") > 0
    full = await gw_anthropic.messages.count_tokens(model="claude-sonnet-4-6", system="You are a careful assistant.",
                                                    messages=question, tools=[WEATHER_TOOL])  # type: ignore[arg-type, list-item]
    tools_json = ('[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", '
                  '"properties": {"city": {"type": "string"}}, "required": ["city"]}, "description": '
                  '"Weather of a city"}}]')
    assert full.input_tokens == (bare.input_tokens + count_text("You are a careful assistant.")
                                 + count_text(tools_json))
    history = await gw_anthropic.messages.count_tokens(model="moe-orchestrator", messages=[  # type: ignore[arg-type]
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "get_weather",
                                           "input": {"city": "Oslo"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "3 C"}]}])
    assert history.input_tokens > count_text("Weather in Oslo?") + count_text("3 C")


@pytest.mark.parametrize(("kwargs", "error", "needle"), [
    ({"model": "llama-unknown", "messages": [{"role": "user", "content": "x"}]}, anthropic.NotFoundError,
     "llama-unknown"),
    ({"model": "claude-sonnet-4-6", "messages": []}, anthropic.BadRequestError, "messages"),
    ({"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": [{"type": "image"}]}]},
     anthropic.BadRequestError, "image"),
])
async def test_count_tokens_errors_are_in_anthropic_format(gw_anthropic: anthropic.AsyncAnthropic,
                                                           kwargs: dict[str, Any], error: type[Exception],
                                                           needle: str) -> None:
    with pytest.raises(error) as raised:
        await gw_anthropic.messages.count_tokens(**kwargs)
    body = raised.value.body  # type: ignore[attr-defined]
    assert body["type"] == "error" and needle in body["error"]["message"]


async def test_count_tokens_needs_a_key(bare_gateway: ServiceProcess) -> None:
    client = anthropic.AsyncAnthropic(base_url=bare_gateway.url, api_key="sk-wrong", max_retries=0, timeout=30)
    with pytest.raises(anthropic.AuthenticationError):
        await client.messages.count_tokens(model="claude-sonnet-4-6", messages=[{"role": "user", "content": "x"}])


@pytest.mark.parametrize("model", ["claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-1"])
async def test_claude_model_ids_select_a_mode(gw_anthropic: anthropic.AsyncAnthropic, driver: BusDriver,
                                              model: str) -> None:
    m = marker()
    task = asyncio.create_task(gw_anthropic.messages.create(
        model=model, max_tokens=32, stop_sequences=["\n\nHuman:", "END"],
        messages=[{"role": "user", "content": f"Hi {m}"}]))
    request = await driver.request(m)
    assert request.mode == "moe-orchestrator"  # the default map: claude-* -> moe-orchestrator
    assert request.params.stop == ["\n\nHuman:", "END"]  # stop_sequences reach every model call
    await driver.answer(request, "Hello.")
    message = await task
    assert message.model == model  # the client sees its own id back
    assert [b.text for b in message.content if b.type == "text"] == ["Hello."]  # type: ignore[union-attr]
    assert (await gw_anthropic.models.retrieve(model)).id == model


async def test_an_unmapped_model_id_is_still_404(gw_anthropic: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.NotFoundError):
        await gw_anthropic.messages.create(model="mistral-large", max_tokens=8,
                                           messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.NotFoundError) as unknown:  # /v1/models serves both SDKs: Anthropic's envelope here
        await gw_anthropic.models.retrieve("mistral-large")
    assert unknown.value.body == {"type": "error", "error": {  # type: ignore[comparison-overlap]
        "type": "not_found_error", "message": "The model 'mistral-large' does not exist"}}
