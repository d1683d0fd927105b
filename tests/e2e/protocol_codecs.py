"""The edge's three client protocols as codecs for the journeys written once (test_protocol_journeys.py): each asks
the fleet through its official SDK (openai for Chat Completions and Responses, anthropic for Messages) and reads the
answer back into one shape, so a journey's assertions are the same for every protocol. A fourth protocol is one
more codec here."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import anthropic
import openai

from tests.support.fleet import Fleet

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


@dataclass
class Said:
    """An answer as every protocol has it: its text, the tokens charged (input, output) and the kinds of its output
    parts in order (a stream opens with the fleet's reasoning where the protocol has a place for it)."""

    text: str
    usage: tuple[int, int]
    kinds: list[str]


@dataclass
class Call:
    """A tool call the fleet asked the client to make: its id (what the tool result must name), name, arguments;
    `turn` is whatever the protocol needs to continue the conversation after it."""

    id: str
    name: str
    arguments: dict[str, Any]
    turn: Any


class Codec(Protocol):
    name: ClassVar[str]
    stream_kinds: ClassVar[list[str]]  # a stream's output parts: the fleet's reasoning first where the protocol has one

    async def ask(self, question: str, system: str | None = None) -> Said: ...
    async def stream(self, question: str) -> Said: ...
    async def tool_call(self, question: str) -> Call: ...
    async def tool_result(self, question: str, call: Call, result: str) -> str: ...


class ChatCompletions:
    name, stream_kinds = "chat", ["message"]
    TOOL: ClassVar[dict[str, Any]] = {"type": "function", "function": {
        "name": "get_weather", "description": "Weather of a city", "parameters": SCHEMA}}

    def __init__(self, fleet: Fleet, key: str) -> None:
        self.client = openai.AsyncOpenAI(base_url=f"{fleet['gateway'].url}/v1", api_key=key, max_retries=0,
                                         timeout=60)

    async def ask(self, question: str, system: str | None = None) -> Said:
        messages = [{"role": "system", "content": system}] if system else []
        done = await self.client.chat.completions.create(model="moe-orchestrator", messages=[
            *messages, {"role": "user", "content": question}])
        assert done.usage is not None and done.choices[0].finish_reason == "stop"
        return Said(done.choices[0].message.content or "", (done.usage.prompt_tokens, done.usage.completion_tokens),
                    ["message"])

    async def stream(self, question: str) -> Said:
        chunks = [c async for c in await self.client.chat.completions.create(
            model="moe-orchestrator", messages=[{"role": "user", "content": question}], stream=True,
            stream_options={"include_usage": True})]
        usage = chunks[-1].usage
        assert usage is not None
        return Said("".join(c.choices[0].delta.content or "" for c in chunks if c.choices),
                    (usage.prompt_tokens, usage.completion_tokens), ["message"])

    async def tool_call(self, question: str) -> Call:
        first = await self.client.chat.completions.create(model="moe-orchestrator", tools=[self.TOOL],
                                                          messages=[{"role": "user", "content": question}])
        assert first.choices[0].finish_reason == "tool_calls"
        call = (first.choices[0].message.tool_calls or [])[0]
        return Call(call.id, call.function.name, json.loads(call.function.arguments),
                    {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]})

    async def tool_result(self, question: str, call: Call, result: str) -> str:
        second = await self.client.chat.completions.create(model="moe-orchestrator", tools=[self.TOOL], messages=[
            {"role": "user", "content": question}, call.turn, {"role": "tool", "tool_call_id": call.id,
                                                               "content": result}])
        assert second.choices[0].finish_reason == "stop"
        return second.choices[0].message.content or ""


class Responses:
    name, stream_kinds = "responses", ["reasoning", "message"]
    TOOL: ClassVar[dict[str, Any]] = {"type": "function", "name": "get_weather", "description": "Weather of a city",
                                      "parameters": SCHEMA}

    def __init__(self, fleet: Fleet, key: str) -> None:
        self.client = openai.AsyncOpenAI(base_url=f"{fleet['gateway'].url}/v1", api_key=key, max_retries=0,
                                         timeout=60)

    async def ask(self, question: str, system: str | None = None) -> Said:
        done = await self.client.responses.create(model="moe-orchestrator", input=question,
                                                  instructions=system or openai.omit)
        assert done.status == "completed" and done.usage is not None
        return Said(done.output_text, (done.usage.input_tokens, done.usage.output_tokens),
                    [item.type for item in done.output])

    async def stream(self, question: str) -> Said:
        async with self.client.responses.stream(model="moe-orchestrator", input=question) as stream:
            final = await stream.get_final_response()
        assert final.usage is not None
        return Said(final.output_text, (final.usage.input_tokens, final.usage.output_tokens),
                    [item.type for item in final.output])

    async def tool_call(self, question: str) -> Call:
        first = await self.client.responses.create(model="moe-orchestrator", tools=[self.TOOL],
                                                   input=question)
        call = next(item for item in first.output if item.type == "function_call")
        return Call(call.call_id, call.name, json.loads(call.arguments), first.id)

    async def tool_result(self, question: str, call: Call, result: str) -> str:
        second = await self.client.responses.create(  # the conversation continues from the stored response
            model="moe-orchestrator", tools=[self.TOOL], previous_response_id=call.turn,
            input=[{"type": "function_call_output", "call_id": call.id, "output": result}])
        return second.output_text


class Messages:
    name, stream_kinds = "messages", ["thinking", "text"]
    TOOL: ClassVar[dict[str, Any]] = {"name": "get_weather", "description": "Weather of a city", "input_schema": SCHEMA}

    def __init__(self, fleet: Fleet, key: str) -> None:
        self.client = anthropic.AsyncAnthropic(base_url=fleet["gateway"].url, api_key=key, max_retries=0, timeout=60)

    @staticmethod
    def _said(message: Any) -> Said:
        return Said("".join(b.text for b in message.content if b.type == "text"),
                    (message.usage.input_tokens, message.usage.output_tokens), [b.type for b in message.content])

    async def ask(self, question: str, system: str | None = None) -> Said:
        done = await self.client.messages.create(model="moe-orchestrator", max_tokens=64,
                                                 messages=[{"role": "user", "content": question}],
                                                 system=system or anthropic.omit)
        assert done.stop_reason == "end_turn"
        return self._said(done)

    async def stream(self, question: str) -> Said:
        async with self.client.messages.stream(model="moe-orchestrator", max_tokens=64,
                                               messages=[{"role": "user", "content": question}]) as stream:
            final = await stream.get_final_message()
        # its thinking: the live progress, or, when the fast-path answer overtook the progress events (another
        # topic), a summary line of how it was answered
        thinking = final.content[0].thinking if final.content[0].type == "thinking" else ""
        assert "planner: planned" in thinking or "answered by: general" in thinking, final.content
        return self._said(final)

    async def tool_call(self, question: str) -> Call:
        first = await self.client.messages.create(model="moe-orchestrator", max_tokens=64, tools=[self.TOOL],
                                                  messages=[{"role": "user", "content": question}])
        assert first.stop_reason == "tool_use"
        use = next(b for b in first.content if b.type == "tool_use")
        return Call(use.id, use.name, dict(use.input), {
            "role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content
                                             if b.type == "tool_use"]})

    async def tool_result(self, question: str, call: Call, result: str) -> str:
        answered = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": result}]}
        asked = [{"role": "user", "content": question}, call.turn, answered]
        second = await self.client.messages.create(model="moe-orchestrator", max_tokens=64, tools=[self.TOOL],
                                                   messages=asked)
        return "".join(b.text for b in second.content if b.type == "text")


CODECS: list[type[ChatCompletions | Responses | Messages]] = [ChatCompletions, Responses, Messages]
