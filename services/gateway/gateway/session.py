"""One published request as its client connection sees it: live events in order, then exactly one end; the
errors of that end, whatever the protocol (an Answer that carries an error, a deadline that passed), as
OpenAIErrors that each protocol renders in its own envelope."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.background import BackgroundTask

from gateway.client_profiles import ClientProfile
from gateway.pending import Event
from gateway.stop_sequences import StopFilter, cut
from gateway.stream_ids import StreamCursor
from gateway.transcript import Done, KeepAlive, StreamEvent, Transcript
from moe_core.contracts import Answer, AnswerDelta, ChatRequest, Progress
from moe_core.llm import structured
from moe_core.runtime.openai_error import OpenAIError

# An Answer's error code -> the status and type the client gets; any other code is a 503 (the fleet could not
# answer now). tool_choice_unmet and response_format_unmet: the models answered, not as the request demanded; a retry
# would not help, nor is it an outage.
ANSWER_ERRORS = {"deadline_exceeded": (504, "timeout_error"), "tool_choice_unmet": (422, "invalid_request_error"),
                 structured.UNMET: (422, "invalid_request_error"),
                 "context_length_exceeded": (400, "invalid_request_error"),
                 # the request's data class may not reach a server it needs (the planner's egress gate): nothing sent
                 "data_class_forbidden": (403, "permission_error"),
                 "invalid_data_class": (400, "invalid_request_error")}


def answer_error(answer: Answer) -> OpenAIError | None:
    if answer.error is None:
        return None
    status, kind = ANSWER_ERRORS.get(answer.error.code, (503, "server_error"))
    return OpenAIError(status, answer.error.message, kind, answer.error.code)


def deadline_error() -> OpenAIError:
    return OpenAIError(504, "the request did not complete before its deadline", "timeout_error",
                       "deadline_exceeded")


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


class RequestRun:
    """Reads the request's queue until its Answer. `close()` must be called when the connection ends:
    it frees the pending entry and, if the answer never arrived, calls `on_abandon` (publishes Cancel)."""

    def __init__(self, request: ChatRequest, queue: asyncio.Queue[Event], *, grace_s: float, keepalive_s: float,
                 on_close: Callable[[ChatRequest, str | None], None]) -> None:
        self.request = request
        self.queue = queue
        self.grace_s = grace_s
        self.keepalive_s = keepalive_s
        self.transcript = Transcript()
        self.stops = StopFilter(request.params.stop)  # streamed text: nothing past a stop sequence
        self.stop_sequence: str | None = None  # the stop sequence the answer ended on
        self.cursor = StreamCursor(request.response_id)  # where the stream is (SSE ids, gateway.resume)
        self.answered = False
        self.gave_up = False
        self._on_close = on_close
        self._closed = False
        self.after_response: Callable[[], Awaitable[None]] | None = None  # work for after the reply is sent
        self.profile: ClientProfile | None = None  # the client profile it runs with (gateway.client_profiles)
        self.arrived: float | None = None  # perf_counter when the request arrived (gateway.overhead)

    def background(self) -> BackgroundTask | None:
        """`after_response` as the response's background task: it runs once the reply is on the wire."""
        return BackgroundTask(self.after_response) if self.after_response is not None else None

    def _end(self) -> float:
        return asyncio.get_running_loop().time() + self.request.remaining_seconds() + self.grace_s

    async def _next(self, end: float, keepalive: bool) -> Event | None:
        """The next bus event; None when a keep-alive is due. Raises the deadline error at the end."""
        remaining = end - asyncio.get_running_loop().time()
        if remaining <= 0:
            self.gave_up = True
            raise deadline_error()
        wait = min(remaining, self.keepalive_s) if keepalive else remaining
        try:
            return await asyncio.wait_for(self.queue.get(), wait)
        except TimeoutError:
            if not keepalive or wait >= remaining:
                self.gave_up = True
                raise deadline_error() from None
            return None

    async def events(self) -> AsyncIterator[StreamEvent]:
        """Progress and deltas as they arrive, keep-alives in long silences, then the rest and Done."""
        end = self._end()
        while True:
            try:
                event = await self._next(end, keepalive=True)
            except Exception:
                self.cursor.idle = False  # the error frames that follow are part of the stream
                raise
            if event is None:
                self.cursor.idle = True
                yield KeepAlive()
                continue
            self.cursor.consume(event)
            if isinstance(event, Answer):
                self.answered = True
                event = self._stopped(event)
                texts, revised = self.transcript.finish(event)
                for piece in texts:
                    yield piece
                yield Done(event, revised)
                return
            elif isinstance(event, AnswerDelta):
                if event.channel == "content":
                    event = event.model_copy(update={"content": self.stops.feed(event.content)})
                for text in self.transcript.delta(event):
                    yield text
            elif isinstance(event, Progress):
                for line in self.transcript.progress(event):
                    yield line

    async def answer(self, client_gone: Awaitable[None] | None = None) -> Answer:
        """Wait for the final Answer only; raises ClientGone if `client_gone` completes first."""
        waiter = asyncio.ensure_future(self._answer())
        watched: set[asyncio.Future[Any]] = {waiter}
        if client_gone is not None:
            watched.add(asyncio.ensure_future(client_gone))
        try:
            done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in watched:
                if not future.done():
                    future.cancel()
        if waiter not in done:
            raise ClientGone()
        return waiter.result()

    async def _answer(self) -> Answer:
        end = self._end()
        while True:
            event = await self._next(end, keepalive=False)
            if isinstance(event, Answer):
                self.answered = True
                return self._stopped(event)

    def _stopped(self, answer: Answer) -> Answer:
        """The Answer ended at the request's first stop sequence (gateway.stop_sequences); of a structured request,
        checked against its format (moe_core.llm.structured: whatever stage or cache produced it), unless a stop
        sequence cut it (returned as produced, as one cut at max_tokens)."""
        answer, self.stop_sequence = cut(answer, self.request.params.stop)
        if self.stop_sequence is None:
            answer = structured.checked(answer, self.request.params.response_format)
        return answer

    def close(self) -> None:
        """Idempotent. An unanswered request is abandoned: reason `client_disconnected`, or `deadline`."""
        if self._closed:
            return
        self._closed = True
        reason = None if self.answered else ("deadline" if self.gave_up else "client_disconnected")
        self._on_close(self.request, reason)
