"""POST /v1/chat/completions: a request becomes a chat.completion body or a live SSE stream of chunks.

Streaming: progress and the merger's thinking go out as they happen — as `reasoning_content` deltas
(default), inside a `<think>` block at the start of `content`, or not at all (`MOE_REASONING_FORMAT`,
per request `metadata.reasoning_format`); answer tokens as `content` deltas as the judge produces them;
`: keep-alive` comments during long silences; tool calls in one delta with finish_reason `tool_calls`.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.requests import Request

from gateway.chat import ChatService, final_answer
from gateway.chat_errors import answer_error
from gateway.images import ImageInput
from gateway.openai_api import (
    ChatCompletionRequest,
    ReasoningFormat,
    chunk_body,
    completion_body,
    finish_reason,
    metadata_body,
    usage_body,
)
from gateway.session import RequestRun
from gateway.stream_ids import KEEP_ALIVE
from gateway.stream_registry import resumable
from gateway.template_select import header_template
from gateway.tools import tool_calls
from gateway.transcript import Done, KeepAlive, Text
from moe_core.observability.metrics import GATEWAY_FIRST_TOKEN, GATEWAY_LATENCY, GATEWAY_REQUESTS
from moe_core.openai_error import OpenAIError

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def complete(chat: ChatService, body: ChatCompletionRequest, tenant_id: str, http: Request,
                   timeout_s: float | None = None) -> Response:
    images: list[ImageInput] = []  # image_url parts, checked and stored by the ChatService (gateway.images)
    run = await chat.start(
        mode=body.model, messages=body.chat_messages(images), tenant_id=tenant_id, params=body.params(),
        stream=body.stream, user=body.user, tools=body.tool_defs(), tool_choice=body.tool_choice,
        timeout_s=timeout_s, template=header_template(http), images=images,
    )
    own = run.profile.reasoning_format if run.profile else None  # a client profile's (gateway.client_profiles)
    reasoning = body.reasoning_format(own or chat.settings.reasoning_format)
    if body.stream:
        stream = OpenAIStream(run, reasoning, body.include_usage)
        frames = await resumable(chat.streams, run, "chat", {"reasoning": reasoning,
                                                             "include_usage": body.include_usage}, stream.sse())
        return StreamingResponse(frames, media_type="text/event-stream", headers=SSE_HEADERS,
                                 background=run.background())
    return await _respond(run, reasoning, http)


async def _respond(run: RequestRun, reasoning: ReasoningFormat, http: Request) -> Response:
    answer = await final_answer(run, http, "chat")
    if answer is None:
        return Response(status_code=499, background=run.background())
    request = run.request
    created = int(request.created_at.timestamp())
    return JSONResponse(completion_body(f"chatcmpl-{request.response_id}", created, request.mode, answer, reasoning),
                        background=run.background())


class OpenAIStream:
    """Renders one run as chat.completion.chunk events."""

    def __init__(self, run: RequestRun, reasoning: ReasoningFormat, include_usage: bool) -> None:
        self.run = run
        self.reasoning = reasoning
        self.include_usage = include_usage
        self.request = run.request
        self.cid = f"chatcmpl-{run.request.response_id}"
        self.created = int(run.request.created_at.timestamp())
        self.think_open = False
        self.first_token = True

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return chunk_body(self.cid, self.created, self.request.mode, delta, finish)

    async def sse(self) -> AsyncIterator[str]:
        started = time.perf_counter()
        mode = self.request.mode
        try:
            yield _sse(self.chunk({"role": "assistant", "content": ""}))
            async for event in self.run.events():
                if isinstance(event, KeepAlive):
                    yield KEEP_ALIVE
                elif isinstance(event, Text):
                    delta = self._text(event)
                    if delta is not None:
                        if event.channel == "content" and self.first_token:
                            self.first_token = False
                            GATEWAY_FIRST_TOKEN.labels("chat").observe(time.perf_counter() - started)
                        yield _sse(self.chunk(delta))
                elif isinstance(event, Done):
                    for frame in self._done(event):
                        yield frame
        except OpenAIError as exc:
            GATEWAY_REQUESTS.labels("chat", mode, str(exc.status)).inc()
            yield _sse(exc.body())
            yield "data: [DONE]\n\n"
        finally:
            self.run.close()
            GATEWAY_LATENCY.labels("chat", "true").observe(time.perf_counter() - started)

    def _text(self, event: Text) -> dict[str, Any] | None:
        if event.channel == "reasoning":
            if self.reasoning == "reasoning_content":
                return {"reasoning_content": event.text}
            if self.reasoning == "think":
                opening = "" if self.think_open else "<think>\n"
                self.think_open = True
                return {"content": opening + event.text}
            return None
        return {"content": self._close_think() + event.text}

    def _close_think(self) -> str:
        if not self.think_open:
            return ""
        self.think_open = False
        return "\n</think>\n\n"

    def _done(self, event: Done) -> list[str]:
        answer, mode = event.answer, self.request.mode
        error = answer_error(answer)
        if error is not None and not answer.content and not answer.tool_calls:
            GATEWAY_REQUESTS.labels("chat", mode, str(error.status)).inc()
            return [_sse(error.body()), "data: [DONE]\n\n"]
        frames = []
        closing = self._close_think()
        if closing:
            frames.append(_sse(self.chunk({"content": closing})))
        if answer.tool_calls:
            calls = [{"index": i, **call} for i, call in enumerate(tool_calls(answer))]
            frames.append(_sse(self.chunk({"tool_calls": calls})))
        final = self.chunk({}, finish_reason(answer))
        final["metadata"] = {**metadata_body(answer), "revised": event.revised}
        frames.append(_sse(final))
        if self.include_usage:
            usage_chunk = self.chunk({})
            usage_chunk["choices"] = []
            usage_chunk["usage"] = usage_body(answer.usage)
            frames.append(_sse(usage_chunk))
        frames.append("data: [DONE]\n\n")
        GATEWAY_REQUESTS.labels("chat", mode, "200").inc()
        return frames


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n"
