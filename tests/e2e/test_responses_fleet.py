"""The Responses API through the whole fleet (scripted models) with the official openai SDK: usage is the
sum of the models' calls, the stream opens with the fleet's reasoning, and a function tool round trip
continues with previous_response_id (the expert model sees the tool's output)."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.conftest import Scripted
from tests.e2e.helpers import calls_for, expected_usage, marker, plan_reply, weather_rules
from tests.support.fleet import Fleet

pytestmark = pytest.mark.e2e
WEATHER: dict[str, Any] = {"type": "function", "name": "get_weather", "description": "Weather of a city",
                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                          "required": ["city"]}}


@pytest.fixture
def client(fleet: Fleet, api_key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{fleet['gateway'].url}/v1", api_key=api_key, max_retries=0, timeout=60)


async def test_fleet_answers_a_responses_client_stream_and_not(client: openai.AsyncOpenAI,
                                                               scripted: Scripted) -> None:
    m = marker()
    script = [{"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Capital {m}"))},
              {"model": "expert-model", "contains": m, "reply": "Paris.\nCONFIDENCE: high"}]
    scripted.script(script)
    response = await client.responses.create(model="moe-orchestrator", instructions="Be brief.",
                                             input=f"Capital of France? {m}")
    assert response.status == "completed" and response.output_text == "Paris."
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == expected_usage(calls_for(scripted.calls(), m))
    scripted.script(script)
    async with client.responses.stream(model="moe-orchestrator", input=f"Capital of France? {m}") as stream:
        final = await stream.get_final_response()
    assert [item.type for item in final.output] == ["reasoning", "message"]  # the stream opens with reasoning
    assert final.output_text == "Paris."


async def test_function_tool_round_trip_through_the_expert_model(client: openai.AsyncOpenAI,
                                                                 scripted: Scripted) -> None:
    m = marker()
    scripted.script(weather_rules(m))
    first = await client.responses.create(model="moe-orchestrator", tools=[WEATHER],  # type: ignore[list-item]
                                          input=f"Weather in Oslo? {m}")
    call = next(item for item in first.output if item.type == "function_call")
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Oslo"})  # type: ignore[union-attr]
    second = await client.responses.create(model="moe-orchestrator", tools=[WEATHER], previous_response_id=first.id,  # type: ignore[list-item]
                                           input=[{"type": "function_call_output", "call_id": call.call_id,  # type: ignore[union-attr]
                                                   "output": "3 C"}])
    assert second.output_text == "It is 3 C in Oslo."
    answered = calls_for(scripted.calls("expert-model"), m)[-1]["messages"]
    result = next(x for x in answered if x.get("role") == "tool")
    assert (result["content"], result["tool_call_id"]) == ("3 C", call.call_id)  # type: ignore[union-attr]
