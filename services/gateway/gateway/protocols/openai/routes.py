"""The OpenAI Chat Completions protocol: POST /v1/chat/completions, answered as a chat.completion body or a live
SSE stream of chunks.

Streaming: progress and the merger's thinking go out as they happen — as `reasoning_content` deltas
(default), inside a `<think>` block at the start of `content`, or not at all (`MOE_REASONING_FORMAT`,
per request `metadata.reasoning_format`); answer tokens as `content` deltas as the judge produces them;
`: keep-alive` comments during long silences; tool calls in one delta with finish_reason `tool_calls`.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response

from gateway import overhead
from gateway.deps import EdgeParts, VerifiedKey, json_body, request_timeout
from gateway.protocols.entry import Protocol, Resumed
from gateway.protocols.openai.api import (
    ReasoningFormat,
    chunk_body,
    completion_body,
    finish_reason,
    moe_body,
    parse_request,
    usage_body,
)
from gateway.session import RequestRun
from gateway.stream import Frames, reply
from gateway.stream_ids import KEEP_ALIVE
from gateway.stream_registry import Api
from gateway.tools import tool_calls
from gateway.transcript import Done, Text
from moe_core.contracts import Answer
from moe_core.llm.input_limits.images import ImageInput
from moe_core.runtime.openai_error import OpenAIError

router = APIRouter(tags=["openai"])
DONE = "data: [DONE]\n\n"


@router.post("/v1/chat/completions")
async def chat_completions(request: Request, key: VerifiedKey, edge: EdgeParts) -> Response:
    """A chat completion: resumed (Last-Event-ID) or parsed, published as a ChatRequest and answered."""
    if (resumed := await edge.resume.resume(request, key, "chat")) is not None:  # Last-Event-ID: the rest
        return resumed
    body = parse_request(await json_body(request))
    images: list[ImageInput] = []  # image_url parts, checked and stored by the ChatService
    run = await edge.chat.open(body, body.chat_messages(images), key.default_tenant, request,
                               request_timeout(request), images)
    own = run.profile.reasoning_format if run.profile else None  # a client profile's (gateway.client_profiles)
    reasoning = body.reasoning_format(own or edge.settings.reasoning_format)
    frames = OpenAIFrames(run, reasoning, body.include_usage)

    async def completion(answer: Answer) -> dict[str, Any]:
        return completion_body(frames.cid, frames.created, frames.mode, answer, reasoning)

    return await reply(edge.chat, run, request, frames, {"reasoning": reasoning, "include_usage": body.include_usage},
                       completion)


class OpenAIFrames:
    """One run as chat.completion.chunk events (gateway.stream writes them)."""

    api: Api = "chat"

    def __init__(self, run: RequestRun, reasoning: ReasoningFormat, include_usage: bool) -> None:
        self.run = run
        self.reasoning = reasoning
        self.include_usage = include_usage
        self.mode = run.request.mode
        self.cid = f"chatcmpl-{run.request.response_id}"
        self.created = int(run.request.created_at.timestamp())
        self.think_open = False

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return chunk_body(self.cid, self.created, self.mode, delta, finish)

    def opening(self) -> list[str]:
        return [_sse(self.chunk({"role": "assistant", "content": ""}))]

    def keepalive(self) -> str:
        return KEEP_ALIVE

    def text(self, event: Text) -> list[str]:
        if event.channel == "reasoning":
            if self.reasoning == "reasoning_content":
                return [_sse(self.chunk({"reasoning_content": event.text}))]
            if self.reasoning == "think":
                opening = "" if self.think_open else "<think>\n"
                self.think_open = True
                return [_sse(self.chunk({"content": opening + event.text}))]
            return []
        return [_sse(self.chunk({"content": self._close_think() + event.text}))]

    def _close_think(self) -> str:
        if not self.think_open:
            return ""
        self.think_open = False
        return "\n</think>\n\n"

    def failed(self, error: OpenAIError) -> list[str]:
        return [_sse(error.body()), DONE]

    refused = failed

    async def done(self, event: Done) -> list[str]:
        answer = event.answer
        frames = []
        closing = self._close_think()
        if closing:
            frames.append(_sse(self.chunk({"content": closing})))
        if answer.tool_calls:
            calls = [{"index": i, **call} for i, call in enumerate(tool_calls(answer))]
            frames.append(_sse(self.chunk({"tool_calls": calls})))
        final = self.chunk({}, finish_reason(answer))
        final["moe"] = {**moe_body(answer), "revised": event.revised}
        if self.run.arrived is not None:  # the fleet's own time, known only now (gateway.overhead)
            final["moe"] |= overhead.figures(answer, self.run.arrived, self.api, stream=True)
        frames.append(_sse(final))
        if self.include_usage:
            usage_chunk = self.chunk({})
            usage_chunk["choices"] = []
            usage_chunk["usage"] = usage_body(answer.usage)
            frames.append(_sse(usage_chunk))
        return [*frames, DONE]


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n"


async def resumed(r: Resumed) -> Frames:
    return OpenAIFrames(r.run, r.spec["reasoning"], bool(r.spec["include_usage"]))


PROTOCOL = Protocol("chat", "/v1/chat/completions", router, resumed=resumed)
