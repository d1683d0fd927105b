"""The client journeys every protocol of the edge must carry through the whole fleet (scripted models), written once
and run for each protocol (tests/e2e/protocol_codecs.py: Chat Completions, Responses, Anthropic Messages, each with
its official SDK): an answer asked for with a system prompt and streamed, its usage the sum of the models' calls;
a tool round trip through the expert model, the tool's result reaching the model with the id of its call.
What only one protocol has (its exact chunks and events, its errors) stays in that protocol's own file."""

from __future__ import annotations

import pytest

from tests.conftest import Scripted
from tests.e2e.helpers import calls_for, expected_usage, marker, plan_reply, weather_rules
from tests.e2e.protocol_codecs import CODECS, Codec
from tests.support.fleet import Fleet

pytestmark = pytest.mark.e2e


@pytest.fixture(params=CODECS, ids=lambda codec: codec.name)
def codec(request: pytest.FixtureRequest, fleet: Fleet, api_key: str) -> Codec:
    made: Codec = request.param(fleet, api_key)
    return made


async def test_the_fleet_answers_stream_and_not(codec: Codec, scripted: Scripted) -> None:
    m = marker()
    script = [{"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Capital {m}"))},
              {"model": "expert-model", "contains": m, "reply": "Paris.\nCONFIDENCE: high"}]
    scripted.script(script)
    said = await codec.ask(f"Capital of France? {m}", system="Be brief.")
    assert said.text == "Paris."
    assert said.usage == expected_usage(calls_for(scripted.calls(), m))
    scripted.script(script)
    streamed = await codec.stream(f"Capital of France? {m}")
    assert streamed.text == "Paris."
    assert streamed.usage == expected_usage(calls_for(scripted.calls(), m))  # both requests' calls: same script
    assert streamed.kinds == codec.stream_kinds  # it opens with the fleet's reasoning where the protocol has a place


async def test_a_tool_round_trip_through_the_expert_model(codec: Codec, scripted: Scripted) -> None:
    m = marker()
    question = f"Weather in Oslo? {m}"
    scripted.script(weather_rules(m, question))
    call = await codec.tool_call(question)
    assert (call.name, call.arguments) == ("get_weather", {"city": "Oslo"})
    expert = calls_for(scripted.calls("expert-model"), m)[0]
    assert expert["body"]["tools"][0]["function"]["name"] == "get_weather"  # the definition reached the model
    assert await codec.tool_result(question, call, "3 C") == "It is 3 C in Oslo."
    answered = calls_for(scripted.calls("expert-model"), m)[-1]["messages"]
    result = next(x for x in answered if x.get("role") == "tool")
    assert (result["content"], result["tool_call_id"]) == ("3 C", call.id)
    asked = next(x for x in answered if x.get("tool_calls"))["tool_calls"]
    assert [(c["id"], c["function"]["name"]) for c in asked] == [(call.id, "get_weather")]
