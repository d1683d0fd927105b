"""One stream writer for every protocol: a run's events (gateway.transcript: Text, KeepAlive, Done) through
the protocol's frame encoder (`Frames`: openai_routes.OpenAIFrames, anthropic_routes.AnthropicFrames,
responses_routes.ResponsesFrames), with the request counts, the first-token and latency metrics, and the error
frames when the run fails; and the one reply of a request, a live SSE stream (registered for a resume) or one
JSON body."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.requests import Request

from gateway import overhead
from gateway.chat import ChatService, final_answer
from gateway.session import RequestRun, answer_error
from gateway.stream_ids import with_ids
from gateway.stream_registry import Api
from gateway.transcript import Done, KeepAlive, Text
from moe_core.contracts import Answer
from moe_core.runtime.observability.metrics import GATEWAY_FIRST_TOKEN, GATEWAY_LATENCY, GATEWAY_REQUESTS
from moe_core.runtime.openai_error import OpenAIError

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class Frames(Protocol):
    """A protocol's SSE frames for the events of one run."""

    api: Api

    def opening(self) -> list[str]: ...  # before any event
    def keepalive(self) -> str: ...  # a long silence
    def text(self, event: Text) -> list[str]: ...  # reasoning or answer text
    async def done(self, event: Done) -> list[str]: ...  # the Answer (with content or tool calls)
    def refused(self, error: OpenAIError) -> list[str]: ...  # an Answer that is only an error
    def failed(self, error: OpenAIError) -> list[str]: ...  # the run failed (deadline, ...)


async def sse(run: RequestRun, frames: Frames) -> AsyncIterator[str]:
    """The run's stream in the protocol's frames; the run is closed when the stream ends."""
    started = time.perf_counter()
    api, mode, first_token = frames.api, run.request.mode, True
    try:
        for frame in frames.opening():
            yield frame
        async for event in run.events():
            if isinstance(event, KeepAlive):
                yield frames.keepalive()
            elif isinstance(event, Text):
                out = frames.text(event)
                if out and event.channel == "content" and first_token:
                    first_token = False
                    GATEWAY_FIRST_TOKEN.labels(api).observe(time.perf_counter() - started)
                for frame in out:
                    yield frame
            elif isinstance(event, Done):
                error = answer_error(event.answer)
                if error is not None and not event.answer.content and not event.answer.tool_calls:
                    GATEWAY_REQUESTS.labels(api, mode, str(error.status)).inc()
                    out = frames.refused(error)
                else:
                    out = await frames.done(event)
                    GATEWAY_REQUESTS.labels(api, mode, "200").inc()
                for frame in out:
                    yield frame
    except OpenAIError as exc:
        GATEWAY_REQUESTS.labels(api, mode, str(exc.status)).inc()
        for frame in frames.failed(exc):
            yield frame
    finally:
        run.close()
        GATEWAY_LATENCY.labels(api, "true").observe(time.perf_counter() - started)


async def reply(chat: ChatService, run: RequestRun, http: Request, frames: Frames, spec: dict[str, Any],
                body: Callable[[Answer], Awaitable[dict[str, Any]]], headers: dict[str, str] | None = None) -> Response:
    """A streamed request's SSE (its renderer's options `spec` kept for a resume, gateway.resume), else the
    Answer's JSON `body` (499 when the client went away first)."""
    run.arrived = overhead.arrived(http)
    if run.request.stream:
        if chat.streams is not None:  # registered for a resume before the first frame is sent
            await chat.streams.register(run, frames.api, spec)
        return StreamingResponse(with_ids(sse(run, frames), run.cursor), media_type="text/event-stream",
                                 headers={**SSE_HEADERS, **overhead.edge_header(run.arrived), **(headers or {})},
                                 background=run.background())
    answer = await final_answer(run, http, frames.api)
    if answer is None:
        return Response(status_code=499, background=run.background())
    content = await body(answer)
    return JSONResponse(content, headers={**overhead.headers(answer, run.arrived, frames.api), **(headers or {})},
                        background=run.background())
