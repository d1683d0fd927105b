"""Resuming a stream: the same POST again with the `Last-Event-ID` header, on any replica.

Every SSE event of a stream carries an `id` (gateway.stream_ids). A client that lost its connection sends
the request again (same route; the body is not used) with `Last-Event-ID: <the last id it received>`,
as an EventSource does; the gateway checks that the same API key opened the stream (anything else is a
404, exactly like an unknown or expired stream), reads the request's events back from their topics
(gateway.stream_replay; an Answer only with a declared producer's signature, as a live one), renders the stream
again and sends only what follows that id. The original connection's Cancel (and its abandonment's charge) waits
`MOE_RESUME_GRACE_S` and is dropped once another connection took over; the resuming replica then settles the
request's usage on its Answer (gateway.metering: claimed once fleet-wide, whichever replica accepted it). A resume
past the deadline (and its grace) gets the rest at once when the Answer is on the topics, else 504
`deadline_exceeded`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi.responses import Response, StreamingResponse
from redis.exceptions import RedisError
from starlette.requests import Request

from gateway.chat import ChatService
from gateway.pending import Event
from gateway.protocols.entry import Resumed
from gateway.protocols.registry import named
from gateway.protocols.responses.store import ResponseStore
from gateway.session import RequestRun
from gateway.stream import SSE_HEADERS, sse
from gateway.stream_ids import Position, with_ids
from gateway.stream_registry import Api, StreamRecord, StreamRegistry
from gateway.stream_replay import Replay
from moe_core.access.keystore import ApiKey
from moe_core.access.throttle import Throttle
from moe_core.contracts import Answer, ChatRequest
from moe_core.runtime.observability import bind_response_id
from moe_core.runtime.observability.metrics import GATEWAY_RESUMED
from moe_core.runtime.openai_error import OpenAIError

log = logging.getLogger(__name__)
LAST_EVENT_ID = "last-event-id"
REPLAY_WINDOW_S = 10.0
SEEN_CHECK_S = 2.0  # how long the events a Last-Event-ID names may take to be read back before it is refused


def never_sent() -> OpenAIError:
    return OpenAIError(400, "Last-Event-ID is not an event id this gateway sent", param="Last-Event-ID",
                       code="invalid_last_event_id")


class StreamResume:
    def __init__(self, chat: ChatService, registry: StreamRegistry, responses: ResponseStore, throttle: Throttle,
                 on_answer: Callable[[Answer], Awaitable[None]] | None = None) -> None:
        """on_answer: what happens to the Answer besides the client (recorded for feedback)."""
        self.chat = chat
        self.throttle = throttle
        self.registry = registry
        self.responses = responses
        self.on_answer = on_answer

    async def resume(self, http: Request, key: ApiKey, api: Api) -> Response | None:
        """The rest of the stream `Last-Event-ID` names; None when the request has no such header."""
        raw = http.headers.get(LAST_EVENT_ID)
        if raw is None:
            return None
        await self.throttle.spend(key, "stream_resumes")  # a read-back of the request's topics: limited per key
        position = Position.parse(raw)
        if position is None:
            raise never_sent()
        try:
            record = await self.registry.load(position.response_id)
        except (RedisError, OSError):
            raise OpenAIError(503, "streams cannot be resumed right now; try again", "service_unavailable",
                              code="resume_unavailable") from None
        if record is None or record.api != api or record.key_id != key.id or record.tenant_id not in key.tenant_ids:
            raise OpenAIError(404, f"No stream '{position.response_id}' to resume (unknown, expired or not yours)",
                              code="stream_not_found")
        request = record.chat_request()
        queue: asyncio.Queue[Event] = asyncio.Queue()
        settings = self.chat.settings
        # Past the deadline, what the fleet did publish is still read back and sent (REPLAY_WINDOW_S to do so).
        grace = settings.deadline_grace_s + max(0.0, -request.remaining_seconds()) + REPLAY_WINDOW_S
        replay = Replay(settings, request, position, queue, lookback_s=settings.resume_lookback_s, linger_s=grace,
                        on_answer=self._answered, proven=self.chat.bus.proven_record)
        if request.remaining_seconds() < -settings.deadline_grace_s:  # over: only what was published, at once
            await self._published(replay)
        else:  # what the client saw, read back before anything is sent: an id naming more is refused
            await self._seen(replay)
        try:
            generation = await self.registry.attach(request)
        except (RedisError, OSError):
            await replay.close()
            raise OpenAIError(503, "streams cannot be resumed right now; try again", "service_unavailable",
                              code="resume_unavailable") from None
        task = asyncio.get_running_loop().create_task(self._replay(replay))
        run = RequestRun(request, queue, grace_s=grace, keepalive_s=settings.keepalive_s,
                         on_close=lambda req, abandoned: self._closed(task, req, abandoned, generation))
        try:
            frames = await self._render(record, run, key)
        except BaseException:
            run.close()
            raise
        GATEWAY_RESUMED.labels(api).inc()
        with bind_response_id(request.response_id):
            log.info("stream resumed after %s (connection %d)", position.render(), generation)
        headers = {"request-id": request.response_id} if api == "messages" else {}
        return StreamingResponse(with_ids(frames, run.cursor, after=position), media_type="text/event-stream",
                                 headers={**SSE_HEADERS, **headers})

    async def _render(self, record: StreamRecord, run: RequestRun, key: ApiKey) -> AsyncIterator[str]:
        protocol = named(record.api)
        assert protocol.resumed is not None  # only a protocol that streams registers a stream
        frames = await protocol.resumed(Resumed(run, record.spec, record.tenant_id, key, self.responses))
        return sse(run, frames)

    async def _seen(self, replay: Replay) -> None:
        with bind_response_id(replay.request.response_id):
            try:
                seen = await replay.seen(SEEN_CHECK_S)
            except Exception:
                log.exception("reading the stream's events back failed")
                raise OpenAIError(503, "the stream's events cannot be read back right now; try again",
                                  "service_unavailable", code="resume_unavailable") from None
        if not seen:
            raise never_sent()

    async def _published(self, replay: Replay) -> None:
        """A request past its deadline (and grace): its Answer is on the topics, or there is nothing to resume."""
        with bind_response_id(replay.request.response_id):
            try:
                await replay.read_published(REPLAY_WINDOW_S)
            except Exception:
                log.exception("reading the stream's events back failed")
                raise OpenAIError(503, "the stream's events cannot be read back right now; try again",
                                  "service_unavailable", code="resume_unavailable") from None
        if replay.path:  # the topics hold fewer events than the id names
            raise never_sent()
        if not replay.answered:
            raise OpenAIError(504, "The request's deadline passed before it was answered: its answer is not on the "
                                   "fleet's topics (never published, or no longer kept). Nothing more to resume.",
                              "timeout_error", code="deadline_exceeded")

    async def _answered(self, answer: Answer) -> Answer:
        """The Answer of a resumed stream: settled here if nobody did (gateway.metering), recorded."""
        metering = self.chat.metering
        if metering is not None:
            answer = await metering.settle(answer, adopted=True)
        if self.on_answer is not None:
            await self.on_answer(answer)
        return answer

    async def _replay(self, replay: Replay) -> None:
        if replay.answered:  # read already (past the deadline)
            return
        with bind_response_id(replay.request.response_id):
            try:
                await replay.run()
            except asyncio.CancelledError:
                raise
            except Exception:  # the run then ends with the deadline error
                log.exception("reading the stream's events back failed")

    def _closed(self, task: asyncio.Task[None], request: ChatRequest, abandoned: str | None,
                generation: int) -> None:
        task.cancel()
        if abandoned is not None:
            self.chat.abandon(request, abandoned, generation)
            if self.chat.metering is not None:  # its usage, unless yet another connection takes it over
                self.chat.metering.abandon_resumed(request.response_id, generation,
                                                   client_gone=abandoned == "client_disconnected")
