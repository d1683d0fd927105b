"""POST /v1/chat/completions: publish the request, wait for its answer, reply (JSON or SSE)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import JSONResponse, StreamingResponse

from gateway.openai_api import (
    MODES,
    ChatCompletionRequest,
    OpenAIError,
    answer_error,
    chunk_body,
    completion_body,
    deadline_error,
    finish_reason,
    usage_body,
)
from gateway.pending import Event, Pending
from gateway.settings import GatewaySettings
from moe_core.bus import Bus
from moe_core.contracts import Answer, ChatRequest, deadline_in
from moe_core.observability import bind_response_id
from moe_core.observability.metrics import GATEWAY_LATENCY, GATEWAY_REQUESTS


class ChatService:
    def __init__(self, settings: GatewaySettings, bus: Bus, pending: Pending) -> None:
        self.settings = settings
        self.bus = bus
        self.pending = pending

    async def complete(self, body: ChatCompletionRequest, tenant_id: str,
                       timeout_s: float | None = None) -> JSONResponse | StreamingResponse:
        """timeout_s: a client's shorter deadline (X-Request-Timeout); never longer than configured."""
        if body.model not in MODES:
            raise OpenAIError(404, f"The model '{body.model}' does not exist", param="model",
                              code="model_not_found")
        messages = body.chat_messages()
        if sum(len(m.content) for m in messages) > self.settings.max_prompt_chars:
            raise OpenAIError(400, "the messages are too long", param="messages", code="context_length_exceeded")
        if not any(m.role == "user" and m.content.strip() for m in messages):
            raise OpenAIError(400, "at least one non-empty user message is required", param="messages")
        rid = uuid.uuid4().hex
        limit = self.settings.request_timeout_s
        request = ChatRequest(
            response_id=rid, tenant_id=tenant_id, deadline_at=deadline_in(min(timeout_s or limit, limit)),
            mode=body.model, messages=messages, params=body.params(), stream=body.stream, user=body.user,
        )
        queue = self.pending.open(rid)
        try:
            with bind_response_id(rid):
                await self.bus.publish(request, self.bus.topics.requests)
        except BaseException:
            self.pending.close(rid)
            raise
        if body.stream:
            return StreamingResponse(self._stream(request, queue, body.include_usage),
                                     media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        return await self._respond(request, queue)

    async def _wait_answer(self, request: ChatRequest, queue: asyncio.Queue[Event]) -> Answer:
        timeout = request.remaining_seconds() + self.settings.deadline_grace_s
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            remaining = end - loop.time()
            if remaining <= 0:
                raise deadline_error()
            try:
                event = await asyncio.wait_for(queue.get(), remaining)
            except TimeoutError:
                raise deadline_error() from None
            if isinstance(event, Answer):
                return event

    async def _respond(self, request: ChatRequest, queue: asyncio.Queue[Event]) -> JSONResponse:
        started = time.perf_counter()
        try:
            answer = await self._wait_answer(request, queue)
        finally:
            self.pending.close(request.response_id)
        GATEWAY_LATENCY.labels("chat", "false").observe(time.perf_counter() - started)
        error = answer_error(answer)
        if error is not None and not answer.content:
            raise error
        GATEWAY_REQUESTS.labels("chat", request.mode, "200").inc()
        created = int(request.created_at.timestamp())
        return JSONResponse(completion_body(f"chatcmpl-{request.response_id}", created, request.mode, answer))

    async def _stream(self, request: ChatRequest, queue: asyncio.Queue[Event],
                      include_usage: bool) -> AsyncIterator[str]:
        started = time.perf_counter()
        cid, created, mode = f"chatcmpl-{request.response_id}", int(request.created_at.timestamp()), request.mode
        try:
            yield _sse(chunk_body(cid, created, mode, {"role": "assistant", "content": ""}))
            waiter = asyncio.ensure_future(self._wait_answer(request, queue))
            try:
                while not waiter.done():
                    done, _ = await asyncio.wait({waiter}, timeout=self.settings.keepalive_s)
                    if not done:
                        yield ": keep-alive\n\n"
                answer = waiter.result()
            except OpenAIError as exc:
                GATEWAY_REQUESTS.labels("chat", mode, str(exc.status)).inc()
                yield _sse(exc.body())
                yield "data: [DONE]\n\n"
                return
            finally:
                waiter.cancel()
            error = answer_error(answer)
            if error is not None and not answer.content:
                GATEWAY_REQUESTS.labels("chat", mode, str(error.status)).inc()
                yield _sse(error.body())
                yield "data: [DONE]\n\n"
                return
            yield _sse(chunk_body(cid, created, mode, {"content": answer.content}))
            final = chunk_body(cid, created, mode, {}, finish_reason(answer))
            final["metadata"] = {"response_id": request.response_id}
            yield _sse(final)
            if include_usage:
                usage_chunk = chunk_body(cid, created, mode, {})
                usage_chunk["choices"] = []
                usage_chunk["usage"] = usage_body(answer.usage)
                yield _sse(usage_chunk)
            yield "data: [DONE]\n\n"
            GATEWAY_REQUESTS.labels("chat", mode, "200").inc()
        finally:
            self.pending.close(request.response_id)
            GATEWAY_LATENCY.labels("chat", "true").observe(time.perf_counter() - started)


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n"
