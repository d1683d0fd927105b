"""The Anthropic Messages protocol: POST /v1/messages (an Anthropic message body or its exact SSE event sequence)
and /v1/messages/count_tokens. Every error on these paths, the key check's included, is rendered in Anthropic's
envelope (gateway.protocols.anthropic.errors, chosen by gateway.app's error handlers).

Stream: message_start, ping, then content blocks as they happen (each content_block_start, deltas,
content_block_stop): live progress and the merger's thinking in `thinking` blocks (unless the request
says thinking {"type": "disabled"}), answer tokens in a `text` block, tool calls as `tool_use` blocks
(input_json_delta); then message_delta (stop_reason, usage) and message_stop. Keep-alives are `ping`
events; errors after the stream began are an `error` event.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from gateway.deps import EdgeParts, VerifiedKey, json_body, request_timeout
from gateway.protocols.anthropic.api import (
    CountTokensRequest,
    message_body,
    parse_messages_request,
    stop_reason,
    usage_body,
)
from gateway.protocols.anthropic.errors import error_body, error_response
from gateway.protocols.anthropic.token_count import count_prompt
from gateway.protocols.entry import Protocol, Resumed
from gateway.session import RequestRun
from gateway.stream import Frames, reply
from gateway.stream_registry import Api
from gateway.tools import tool_calls, tool_use_block
from gateway.transcript import Done, Text
from moe_core.contracts import Answer
from moe_core.llm.input_limits.images import ImageInput
from moe_core.llm.model_map import resolve
from moe_core.runtime.observability.metrics import GATEWAY_REQUESTS
from moe_core.runtime.openai_error import OpenAIError

router = APIRouter(tags=["anthropic"])
PREFIX = "/v1/messages"  # the paths whose errors are Anthropic's


@router.post("/v1/messages")
async def messages(request: Request, key: VerifiedKey, edge: EdgeParts) -> Response:
    """The Anthropic Messages API: resumed (Last-Event-ID) or parsed, published as a ChatRequest and answered."""
    if (resumed := await edge.resume.resume(request, key, "messages")) is not None:  # Last-Event-ID
        return resumed
    body = parse_messages_request(await json_body(request))
    images: list[ImageInput] = []  # image blocks, checked and stored by the ChatService
    run = await edge.chat.open(body, body.chat_messages(images), key.default_tenant, request,
                               request_timeout(request), images)
    thinking = body.wants_thinking(edge.settings.anthropic_thinking)

    async def message(answer: Answer) -> dict[str, Any]:
        return message_body(body.model, answer, thinking, run.stop_sequence)

    return await reply(edge.chat, run, request, AnthropicFrames(run, thinking, body.model),
                       {"thinking": thinking, "model": body.model}, message,
                       headers={"request-id": run.request.response_id})


@router.post("/v1/messages/count_tokens")
async def messages_count_tokens(request: Request, _: VerifiedKey, edge: EdgeParts) -> Response:
    """Anthropic's token counting (what Claude Code calls before a turn): the prompt's tokens
    (gateway.protocols.anthropic.token_count), nothing is generated."""
    body = parse_messages_request(await json_body(request), CountTokensRequest)
    found = resolve(body.model, edge.settings.model_map)  # also `<mode>@<template>`
    if found is None:
        raise OpenAIError(404, f"The model '{body.model}' does not exist", param="model", code="model_not_found")
    GATEWAY_REQUESTS.labels("count_tokens", found[0], "200").inc()
    return JSONResponse({"input_tokens": count_prompt(body.chat_messages([]), body.tool_defs())})


class AnthropicFrames:
    """One run as Anthropic stream events, opening and closing content blocks as needed (gateway.stream)."""

    api: Api = "messages"

    def __init__(self, run: RequestRun, thinking: bool, model: str | None = None) -> None:
        """model: the client's id, echoed as a non-streamed message echoes it (else the fleet's mode)."""
        self.run = run
        self.thinking = thinking
        self.model = model or run.request.mode
        self.index = -1
        self.open: str | None = None  # type of the open content block

    def opening(self) -> list[str]:
        return [_event("message_start", {"type": "message_start", "message": {
            "id": f"msg_{self.run.request.response_id}", "type": "message", "role": "assistant",
            "model": self.model, "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0}}}), self.keepalive()]

    def keepalive(self) -> str:
        return _event("ping", {"type": "ping"})

    def _start(self, block: dict[str, Any]) -> list[str]:
        frames = self._stop()
        self.index += 1
        self.open = block["type"]
        frames.append(_event("content_block_start",
                             {"type": "content_block_start", "index": self.index, "content_block": block}))
        return frames

    def _stop(self) -> list[str]:
        if self.open is None:
            return []
        self.open = None
        return [_event("content_block_stop", {"type": "content_block_stop", "index": self.index})]

    def _delta(self, delta: dict[str, Any]) -> str:
        return _event("content_block_delta", {"type": "content_block_delta", "index": self.index, "delta": delta})

    def text(self, event: Text) -> list[str]:
        if event.channel == "reasoning":
            if not self.thinking:
                return []
            frames = [] if self.open == "thinking" else self._start({"type": "thinking", "thinking": "",
                                                                      "signature": ""})
            return [*frames, self._delta({"type": "thinking_delta", "thinking": event.text})]
        frames = [] if self.open == "text" else self._start({"type": "text", "text": ""})
        return [*frames, self._delta({"type": "text_delta", "text": event.text})]

    def failed(self, error: OpenAIError) -> list[str]:
        return [_event("error", error_body(error))]

    def refused(self, error: OpenAIError) -> list[str]:
        return [*self._stop(), *self.failed(error)]

    async def done(self, event: Done) -> list[str]:
        answer = event.answer
        frames = []
        for call in tool_calls(answer):
            block = tool_use_block(call)
            frames += self._start({**block, "input": {}})
            frames.append(self._delta({"type": "input_json_delta",
                                       "partial_json": json.dumps(block["input"], ensure_ascii=False)}))
        frames += self._stop()
        frames.append(_event("message_delta", {
            "type": "message_delta", "delta": {"stop_reason": stop_reason(answer, self.run.stop_sequence),
                                               "stop_sequence": None if answer.tool_calls else self.run.stop_sequence},
            "usage": usage_body(answer)}))
        frames.append(_event("message_stop", {"type": "message_stop"}))
        return frames


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'), ensure_ascii=False)}\n\n"


async def resumed(r: Resumed) -> Frames:
    return AnthropicFrames(r.run, bool(r.spec["thinking"]), r.spec.get("model"))


PROTOCOL = Protocol("messages", PREFIX, router, envelope=error_body, render=error_response, resumed=resumed)
