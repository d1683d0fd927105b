"""The OpenAI Responses API (/v1/responses) with the official openai SDK's `client.responses`: create (text
or messages, instructions), the typed stream events, retrieve, previous_response_id, function tools and
function_call_output items. A gateway alone on the real broker; a BusDriver plays the fleet.
(tests/e2e/gateway/test_protocol_journeys.py runs the same client through the whole fleet.)"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import openai
import pytest

from moe_core.contracts import ChatMessage, Usage
from tests.e2e.helpers import marker
from tests.support.bus_driver import BusDriver
from tests.support.fleet import ServiceProcess

pytestmark = pytest.mark.e2e
WEATHER: dict[str, Any] = {"type": "function", "name": "get_weather", "description": "Weather of a city",
                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                          "required": ["city"]}}
CALL = {"id": "call_w1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}


async def test_create_and_retrieve_with_instructions(gw: openai.AsyncOpenAI, driver: BusDriver) -> None:
    m = marker()
    task = asyncio.create_task(gw.responses.create(model="moe-orchestrator", instructions="Be terse.",
                                                   input=f"Capital of France? {m}", max_output_tokens=64))
    request = await driver.request(m)
    assert [(x.role, x.content) for x in request.messages] == [("system", "Be terse."),
                                                               ("user", f"Capital of France? {m}")]
    assert request.params.max_tokens == 64 and request.stream is False
    await driver.answer(request, "Paris.", reasoning="One expert, high confidence.",
                        usage=Usage(prompt_tokens=20, completion_tokens=3))
    response = await task
    assert response.id == f"resp_{request.response_id}"
    assert (response.status, response.model, response.output_text) == ("completed", "moe-orchestrator", "Paris.")
    assert [item.type for item in response.output] == ["reasoning", "message"]
    assert response.output[0].summary[0].text == "One expert, high confidence."  # type: ignore[union-attr]
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (20, 3, 23)
    again = await gw.responses.retrieve(response.id)
    assert again.model_dump() == response.model_dump()


async def test_an_answer_cut_at_max_output_tokens_is_incomplete_with_its_message(
        gw: openai.AsyncOpenAI, driver: BusDriver) -> None:
    """The response and its message item are both `incomplete` (the message said `completed`, a new user saw),
    created and streamed alike."""
    m = marker()
    task = asyncio.create_task(gw.responses.create(model="moe-orchestrator", input=f"Long {m}", max_output_tokens=4))
    await driver.answer(await driver.request(m), "One two three four", finish_reason="length")
    response = await task
    assert (response.status, response.incomplete_details and response.incomplete_details.reason) == (
        "incomplete", "max_output_tokens")
    assert [(item.type, item.status) for item in response.output] == [("message", "incomplete")]  # type: ignore[union-attr]
    assert response.output_text == "One two three four"
    stream = await gw.responses.create(model="moe-orchestrator", input=f"Long {m} 2", max_output_tokens=4,
                                       stream=True)
    await driver.answer(await driver.request(f"{m} 2"), "One two three four", finish_reason="length")
    events = [event async for event in stream]
    done = [e.item for e in events if e.type == "response.output_item.done"]  # type: ignore[union-attr]
    assert [(item.type, item.status) for item in done] == [("message", "incomplete")]  # type: ignore[union-attr]
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.output[0].status == "incomplete"  # type: ignore[union-attr]


async def test_message_items_and_a_client_model_id(gw: openai.AsyncOpenAI, driver: BusDriver) -> None:
    m = marker()
    task = asyncio.create_task(gw.responses.create(model="gpt-4.1", input=[
        {"role": "developer", "content": "Rule."},
        {"role": "user", "content": [{"type": "input_text", "text": "Earlier"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Answer"}]},
        {"role": "user", "content": f"Now {m}"}]))
    request = await driver.request(m)
    assert request.mode == "moe-orchestrator"  # gpt-* is in the default model map
    assert [(x.role, x.content) for x in request.messages] == [
        ("developer", "Rule."), ("user", "Earlier"), ("assistant", "Answer"), ("user", f"Now {m}")]
    await driver.answer(request, "Done.")
    response = await task
    assert response.model == "gpt-4.1" and response.output_text == "Done."


async def test_previous_response_id_continues_the_conversation(gw: openai.AsyncOpenAI, driver: BusDriver) -> None:
    m = marker()
    task = asyncio.create_task(gw.responses.create(model="moe-orchestrator", instructions="First rules.",
                                                   input=f"My name is Ada. {m}"))
    first_request = await driver.request(m)
    await driver.answer(first_request, "Hello Ada.")
    first = await task
    n = marker()
    task = asyncio.create_task(gw.responses.create(model="moe-orchestrator", previous_response_id=first.id,
                                                   input=f"What is my name? {n}"))
    request = await driver.request(n)
    # Earlier turns come back in order; the first response's instructions do not (they apply to it only).
    assert [(x.role, x.content) for x in request.messages] == [
        ("user", f"My name is Ada. {m}"), ("assistant", "Hello Ada."), ("user", f"What is my name? {n}")]
    await driver.answer(request, "Ada.")
    second = await task
    assert second.previous_response_id == first.id and second.output_text == "Ada."


async def test_function_call_round_trip(gw: openai.AsyncOpenAI, driver: BusDriver) -> None:
    m = marker()
    task = asyncio.create_task(gw.responses.create(model="moe-orchestrator-agent", tools=[WEATHER],  # type: ignore[list-item]
                                                   tool_choice={"type": "function", "name": "get_weather"},
                                                   input=f"Weather in Oslo? {m}"))
    request = await driver.request(m)
    assert request.tools == [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather of a city", "parameters": WEATHER["parameters"]}}]
    assert request.tool_choice == {"type": "function", "function": {"name": "get_weather"}}
    await driver.answer(request, "", tool_calls=[CALL], usage=Usage(prompt_tokens=12, completion_tokens=1))
    first = await task
    calls = [item for item in first.output if item.type == "function_call"]
    assert [(c.call_id, c.name, json.loads(c.arguments)) for c in calls] == [  # type: ignore[union-attr]
        ("call_w1", "get_weather", {"city": "Oslo"})]
    assert first.output_text == ""
    n = marker()
    task = asyncio.create_task(gw.responses.create(
        model="moe-orchestrator-agent", tools=[WEATHER], previous_response_id=first.id,  # type: ignore[list-item]
        input=[{"type": "function_call_output", "call_id": "call_w1", "output": f"3 C {n}"}]))
    request = await driver.request(n)
    assert request.messages == [ChatMessage(role="user", content=f"Weather in Oslo? {m}"),
                                ChatMessage(role="assistant", content="", tool_calls=[CALL]),
                                ChatMessage(role="tool", content=f"3 C {n}", tool_call_id="call_w1")]
    await driver.answer(request, "It is 3 C in Oslo.")
    second = await task
    assert second.output_text == "It is 3 C in Oslo."


async def test_function_call_items_in_the_input(gw: openai.AsyncOpenAI, driver: BusDriver) -> None:
    """Without a stored response (store=false clients such as agents send the whole history)."""
    m = marker()
    task = asyncio.create_task(gw.responses.create(model="moe-orchestrator", store=False, tools=[WEATHER],  # type: ignore[list-item]
                                                   input=[
        {"role": "user", "content": f"Weather in Oslo and Rome? {m}"},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city":"Oslo"}'},
        {"type": "function_call", "call_id": "c2", "name": "get_weather", "arguments": '{"city":"Rome"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "3 C"},
        {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "20 C"}]}]))
    request = await driver.request(m)
    assert [(x.role, x.content, x.tool_call_id) for x in request.messages] == [
        ("user", f"Weather in Oslo and Rome? {m}", None), ("assistant", "", None), ("tool", "3 C", "c1"),
        ("tool", "20 C", "c2")]
    assert [c["id"] for c in request.messages[1].tool_calls or []] == ["c1", "c2"]
    answer = await driver.answer(request, "Oslo 3 C, Rome 20 C.")
    response = await task
    assert response.output_text == "Oslo 3 C, Rome 20 C."
    with pytest.raises(openai.NotFoundError):  # store=false: nothing to retrieve
        await gw.responses.retrieve(f"resp_{answer.response_id}")


async def test_custom_tools_round_trip(gw: openai.AsyncOpenAI, driver: BusDriver) -> None:
    """A custom (freeform) tool is a function with one string `input` for the models; its call comes back as a
    custom_tool_call item, and custom_tool_call / _output input items continue the conversation."""
    patch = {"type": "custom", "name": "apply_patch", "description": "Edit files",
             "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}}
    m = marker()
    stream = await gw.responses.create(model="moe-orchestrator", tools=[patch], input=f"Fix it {m}", stream=True)  # type: ignore[list-item]
    request = await driver.request(m)
    assert request.tools[0]["function"]["name"] == "apply_patch"
    assert request.tools[0]["function"]["parameters"]["required"] == ["input"]
    call = {"id": "call_p1", "type": "function",
            "function": {"name": "apply_patch", "arguments": '{"input": "*** Begin Patch\\n*** End Patch"}'}}
    await driver.answer(request, "", tool_calls=[call])
    events = [e async for e in stream]
    assert [e.type for e in events if "custom_tool_call" in e.type] == [
        "response.custom_tool_call_input.delta", "response.custom_tool_call_input.done"]
    item = events[-1].response.output[-1]  # type: ignore[union-attr]
    assert (item.type, item.call_id, item.name, item.input) == (  # type: ignore[union-attr]
        "custom_tool_call", "call_p1", "apply_patch", "*** Begin Patch\n*** End Patch")
    n = marker()
    task = asyncio.create_task(gw.responses.create(model="moe-orchestrator", tools=[patch], store=False, input=[  # type: ignore[list-item]
        {"role": "user", "content": f"Fix it {n}"},
        {"type": "custom_tool_call", "call_id": "call_p1", "name": "apply_patch", "input": "*** Begin Patch"},
        {"type": "custom_tool_call_output", "call_id": "call_p1", "output": "Done!"}]))
    request = await driver.request(n)
    assert request.messages[1].tool_calls == [{"id": "call_p1", "type": "function", "function": {
        "name": "apply_patch", "arguments": '{"input": "*** Begin Patch"}'}}]
    assert (request.messages[2].role, request.messages[2].content) == ("tool", "Done!")
    await driver.answer(request, "Patched.")
    assert (await task).output_text == "Patched."


async def test_stream_sends_the_typed_events(gw: openai.AsyncOpenAI, driver: BusDriver) -> None:
    m = marker()
    stream = await gw.responses.create(model="moe-orchestrator", input=f"Stream {m}", stream=True, tools=[WEATHER])  # type: ignore[list-item]
    events = aiter(stream)
    first = await anext(events)
    assert first.type == "response.created" and first.response.status == "in_progress"
    assert (await anext(events)).type == "response.in_progress"
    request = await driver.request(m)
    await driver.progress(request, "planner", "planned", "general")
    seen = [await anext(events) for _ in range(3)]  # live, before any Answer
    await driver.delta(request, 0, "Hel")
    await driver.delta(request, 1, "lo")
    seen += [await anext(events) for _ in range(7)]
    await driver.answer(request, "Hello!", tool_calls=[CALL], usage=Usage(prompt_tokens=9, completion_tokens=4))
    seen += [event async for event in events]
    assert [e.type for e in seen] == [
        "response.output_item.added", "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done", "response.reasoning_summary_part.done", "response.output_item.done",
        "response.output_item.added", "response.content_part.added", "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.delta", "response.output_text.done", "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.completed"]
    assert [e.sequence_number for e in seen] == list(range(2, 2 + len(seen)))
    assert seen[2].delta == "planner: planned (general)\n"  # type: ignore[union-attr]
    assert [e.delta for e in seen if e.type == "response.output_text.delta"] == ["Hel", "lo", "!"]  # type: ignore[union-attr]
    done = seen[-1].response  # type: ignore[union-attr]
    assert [i.type for i in done.output] == ["reasoning", "message", "function_call"]
    assert done.output_text == "Hello!" and done.usage is not None and done.usage.total_tokens == 13
    stored = await gw.responses.retrieve(done.id)
    assert stored.output_text == "Hello!" and stored.status == "completed"


async def test_stream_helper_accumulates_the_final_response(gw: openai.AsyncOpenAI, driver: BusDriver) -> None:
    m = marker()

    async def run() -> Any:
        async with gw.responses.stream(model="moe-orchestrator", input=f"Helper {m}") as stream:
            texts = [e.delta async for e in stream if e.type == "response.output_text.delta"]
            return texts, await stream.get_final_response()

    task = asyncio.create_task(run())
    request = await driver.request(m)
    await driver.answer(request, "Whole answer.")
    texts, final = await task
    assert "".join(texts) == "Whole answer." and final.output_text == "Whole answer."


async def test_a_failed_answer_is_a_response_failed_event(gw: openai.AsyncOpenAI, driver: BusDriver) -> None:
    from moe_core.contracts import ErrorInfo

    m = marker()
    stream = await gw.responses.create(model="moe-orchestrator", input=f"Fail {m}", stream=True)
    request = await driver.request(m)
    await driver.answer(request, "", finish_reason="deadline",
                        error=ErrorInfo(code="deadline_exceeded", message="no expert answered before the deadline"))
    events = [e async for e in stream]
    assert events[-1].type == "response.failed"
    failed = events[-1].response  # type: ignore[union-attr]
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.message == "no expert answered before the deadline"


@pytest.mark.parametrize(("body", "status", "needle"), [
    ({"input": "x", "model": "no-such-model"}, 404, "no-such-model"),
    ({"input": []}, 400, "input"),
    ({"input": [{"type": "input_image", "image_url": "http://x"}]}, 400, "input_image"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}, 400, "input_image"),
    ({"input": [{"type": "function_call_output", "output": "3 C"}]}, 400, "call_id"),
    ({"input": "x", "tools": [{"type": "web_search"}]}, 400, "function and custom tools"),
    ({"input": "x", "tool_choice": {"type": "function", "name": "nope"}, "tools": [WEATHER]}, 400, "nope"),
    ({"input": "x", "previous_response_id": "resp_unknown"}, 404, "resp_unknown"),
    ({"input": "x", "max_output_tokens": 0}, 400, "max_output_tokens"),
])
async def test_bad_requests_get_the_openai_envelope(bare_gateway: ServiceProcess, api_key: str, body: dict[str, Any],
                                                    status: int, needle: str) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(f"{bare_gateway.url}/v1/responses", json={"model": "moe-orchestrator", **body},
                                   headers={"Authorization": f"Bearer {api_key}"})
        assert response.status_code == status, response.text
        assert needle in response.json()["error"]["message"]
        missing = await http.get(f"{bare_gateway.url}/v1/responses/resp_nothing",
                                 headers={"Authorization": f"Bearer {api_key}"})
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        unauthenticated = await http.get(f"{bare_gateway.url}/v1/responses/resp_nothing")
        assert unauthenticated.status_code == 401


async def test_an_input_without_a_user_message_names_input(bare_gateway: ServiceProcess, api_key: str) -> None:
    """Found in a new-user trial: the error named `messages`, a field the Responses API does not have."""
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(f"{bare_gateway.url}/v1/responses", headers={"Authorization": f"Bearer {api_key}"},
                                   json={"model": "moe-orchestrator", "input": [
                                       {"type": "function_call_output", "call_id": "nope", "output": "x"}]})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "input" and "user message" in error["message"]
