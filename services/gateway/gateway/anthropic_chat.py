"""POST /v1/messages: a request becomes an Anthropic message body or its exact SSE event sequence.

Stream: message_start, ping, then content blocks as they happen (each content_block_start, deltas,
content_block_stop): live progress and the merger's thinking in `thinking` blocks (unless the request
says thinking {"type": "disabled"}), answer tokens in a `text` block, tool calls as `tool_use` blocks
(input_json_delta); then message_delta (stop_reason, usage) and message_stop. Keep-alives are `ping`
events; errors after the stream began are an `error` event.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.requests import Request

from gateway.anthropic_api import MessagesRequest, message_body, stop_reason, usage_body
from gateway.anthropic_errors import error_body
from gateway.chat import ChatService, final_answer
from gateway.chat_errors import answer_error
from gateway.images import ImageInput
from gateway.openai_chat import SSE_HEADERS
from gateway.session import RequestRun
from gateway.stream_registry import resumable
from gateway.template_select import header_template, resolve
from gateway.token_count import count_prompt
from gateway.tools import tool_calls, tool_use_block
from gateway.transcript import Done, KeepAlive, Text
from moe_core.observability.metrics import GATEWAY_FIRST_TOKEN, GATEWAY_LATENCY, GATEWAY_REQUESTS
from moe_core.openai_error import OpenAIError


async def create_message(chat: ChatService, body: MessagesRequest, tenant_id: str, http: Request,
                         timeout_s: float | None = None) -> Response:
    images: list[ImageInput] = []  # image blocks, checked and stored by the ChatService (gateway.images)
    run = await chat.start(
        mode=body.model, messages=body.chat_messages(images), tenant_id=tenant_id, params=body.params(),
        stream=body.stream, user=body.user, tools=body.tool_defs(), tool_choice=body.openai_tool_choice(),
        timeout_s=timeout_s, template=header_template(http), images=images,
    )
    thinking = body.wants_thinking(chat.settings.anthropic_thinking)
    headers = {"request-id": run.request.response_id}
    if body.stream:
        frames = await resumable(chat.streams, run, "messages", {"thinking": thinking},
                                 AnthropicStream(run, thinking).sse())
        return StreamingResponse(frames, media_type="text/event-stream",
                                 headers={**SSE_HEADERS, **headers}, background=run.background())
    answer = await final_answer(run, http, "messages")
    if answer is None:
        return Response(status_code=499, background=run.background())
    return JSONResponse(message_body(body.model, answer, thinking, run.stop_sequence), headers=headers,
                        background=run.background())


def count_tokens(body: MessagesRequest, model_map: Mapping[str, str]) -> JSONResponse:
    """POST /v1/messages/count_tokens: the prompt's tokens (gateway.token_count), nothing is generated."""
    found = resolve(body.model, model_map)  # also `<mode>@<template>`
    if found is None:
        raise OpenAIError(404, f"The model '{body.model}' does not exist", param="model", code="model_not_found")
    GATEWAY_REQUESTS.labels("count_tokens", found[0], "200").inc()
    return JSONResponse({"input_tokens": count_prompt(body.chat_messages([]), body.tool_defs())})


class AnthropicStream:
    """Renders one run as Anthropic stream events, opening and closing content blocks as needed."""

    def __init__(self, run: RequestRun, thinking: bool) -> None:
        self.run = run
        self.thinking = thinking
        self.mode = run.request.mode
        self.index = -1
        self.open: str | None = None  # type of the open content block
        self.first_token = True

    async def sse(self) -> AsyncIterator[str]:
        started = time.perf_counter()
        try:
            yield _event("message_start", {"type": "message_start", "message": {
                "id": f"msg_{self.run.request.response_id}", "type": "message", "role": "assistant",
                "model": self.mode, "content": [], "stop_reason": None, "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0}}})
            yield _ping()
            async for event in self.run.events():
                if isinstance(event, KeepAlive):
                    yield _ping()
                elif isinstance(event, Text):
                    if event.channel == "content" and self.first_token:
                        self.first_token = False
                        GATEWAY_FIRST_TOKEN.labels("messages").observe(time.perf_counter() - started)
                    for frame in self._text(event):
                        yield frame
                elif isinstance(event, Done):
                    for frame in self._done(event):
                        yield frame
        except OpenAIError as exc:
            GATEWAY_REQUESTS.labels("messages", self.mode, str(exc.status)).inc()
            yield _event("error", error_body(exc))
        finally:
            self.run.close()
            GATEWAY_LATENCY.labels("messages", "true").observe(time.perf_counter() - started)

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

    def _text(self, event: Text) -> list[str]:
        if event.channel == "reasoning":
            if not self.thinking:
                return []
            frames = [] if self.open == "thinking" else self._start({"type": "thinking", "thinking": "",
                                                                      "signature": ""})
            return [*frames, self._delta({"type": "thinking_delta", "thinking": event.text})]
        frames = [] if self.open == "text" else self._start({"type": "text", "text": ""})
        return [*frames, self._delta({"type": "text_delta", "text": event.text})]

    def _done(self, event: Done) -> list[str]:
        answer = event.answer
        error = answer_error(answer)
        if error is not None and not answer.content and not answer.tool_calls:
            GATEWAY_REQUESTS.labels("messages", self.mode, str(error.status)).inc()
            return [*self._stop(), _event("error", error_body(error))]
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
        GATEWAY_REQUESTS.labels("messages", self.mode, "200").inc()
        return frames


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'), ensure_ascii=False)}\n\n"


def _ping() -> str:
    return _event("ping", {"type": "ping"})
