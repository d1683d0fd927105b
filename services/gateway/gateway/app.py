"""gateway: the edge of the fleet — the OpenAI (Chat Completions), Anthropic (Messages) and OpenAI Responses
protocols, the key check, limits and budgets, the stream and its resume; health and metrics. Each protocol
is a package with one router of named handlers (gateway.protocols, listed in gateway.protocols.registry);
administration, documents, audit and the console are the control plane's (services/control-plane)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import template_select, tenant_metrics
from gateway.accounts import Accounts
from gateway.chat import ChatService
from gateway.client_profiles import LiveProfiles, client_headers
from gateway.declaration import SERVICE
from gateway.deps import Edge
from gateway.feedback import AnswerRecorder
from gateway.overhead import ARRIVED
from gateway.pending import Pending
from gateway.protocols.entry import openai_envelope
from gateway.protocols.registry import ANTHROPIC, MODELS, PROTOCOLS, serving
from gateway.protocols.responses.store import ResponseStore
from gateway.resume import StreamResume
from gateway.settings import GatewaySettings
from gateway.stream_registry import StreamRegistry
from moe_core.access.key_guard import KeyGuard
from moe_core.access.keystore import KeyStore
from moe_core.access.throttle import Throttle
from moe_core.llm.exact_cache import ExactAnswers
from moe_core.llm.images import ImageStore
from moe_core.llm.inference import InferenceConfig
from moe_core.llm.input_limits.images import ImageIntake
from moe_core.llm.input_limits.middleware import InputLimits
from moe_core.runtime.bus import Bus, wait_positioned
from moe_core.runtime.observability.metrics import GATEWAY_REQUESTS
from moe_core.runtime.openai_error import OpenAIError, install_error_handlers, openai_response
from moe_core.runtime.service import create_service_app
from moe_core.runtime.stores import redis_client

REPLICA = f"{socket.gethostname()}:{os.getpid()}"
REPLICA_HEADER = (b"x-moe-replica", REPLICA.encode("latin-1"))


def create_app(
    settings: GatewaySettings | None = None,
    *,
    bus: Bus | None = None,
    keystore: KeyStore | None = None,
    manage_broker: bool = True,
) -> FastAPI:
    settings = settings or GatewaySettings()
    bus = bus or Bus(settings)
    redis = redis_client(settings.redis_url, settings.redis_ca_file, settings.redis_max_connections)
    pending = Pending()
    holder: dict[str, KeyStore] = {}
    answers = AnswerRecorder(redis, settings.topic_namespace, settings.feedback_window_s)  # what a rating needs
    accounts = Accounts(settings, redis, lambda: holder["store"], bus)  # limits, usage settlement, key changes
    # usage settled against the key's limits, the answer recorded for feedback, then delivered
    on_answer = answers.recording(accounts.metering, pending.deliver, pending.is_open)
    replies = _replies(bus, pending, on_answer)
    images, chat = _chat(settings, bus, redis, pending, answers, accounts)
    throttle = Throttle(accounts.limiter, settings)  # per-key limit of stream resumes
    responses = ResponseStore(redis, settings.topic_namespace, settings.responses_ttl_s)
    chat.streams = StreamRegistry(redis, settings.topic_namespace, grace_s=settings.resume_grace_s,
                                  deadline_grace_s=settings.deadline_grace_s)  # resumable streams
    accounts.metering.streams = chat.streams  # a dropped stream's usage waits for its resume
    resume = StreamResume(chat, chat.streams, responses, throttle, on_answer=answers.record_quietly)  # Last-Event-ID
    if keystore is not None:
        holder["store"] = keystore

    async def open_store() -> None:
        if "store" not in holder:
            holder["store"] = await KeyStore.connect(settings.postgres_dsn, settings.key_cache_ttl_s,
                                                     settings.key_negative_ttl_s)
        app.state.key_store = holder["store"]  # what the routers' key check reads
        await accounts.start()
        for subscriber in replies:
            await wait_positioned(subscriber)

    async def close_store() -> None:
        await chat.aclose()
        await accounts.close()
        if keystore is None and "store" in holder:
            await holder.pop("store").close()
        await redis.aclose()

    async def postgres_ready() -> None:
        await holder["store"].ping()

    app = create_service_app(settings, bus, checks={"postgres": postgres_ready}, on_startup=[open_store],
                             on_shutdown=[close_store, images.aclose], manage_broker=manage_broker)
    app.state.edge = Edge(settings, chat, responses, resume)  # what the handlers are given (gateway.deps)
    app.state.key_guard = KeyGuard(accounts.limiter, settings.limit_failed_key_lookups_per_minute)
    app.add_middleware(InputLimits, limits=settings, envelope=envelope)  # body size, JSON depth, lists, strings
    app.add_middleware(EdgeHeaders)  # x-moe-replica out; the headers that choose a client profile in
    install_error_handlers(app, render=render_error, on_error=count_error)
    for protocol in PROTOCOLS:
        app.include_router(protocol.router)
    app.include_router(tenant_metrics.router)
    return app


def _replies(bus: Bus, pending: Pending, on_answer: Callable[[Any], Awaitable[None]]) -> list[Any]:
    """The declared subscriptions (gateway.declaration), each to its handler. Every replica reads every reply
    partition (no group) and keeps the ones it is waiting for; records of requests this replica does not wait for
    are dropped by key, unparsed."""
    handlers: dict[str, Callable[[Any], Awaitable[None]]] = {"deliver_answer": on_answer, "deliver": pending.deliver}
    replies = []
    for declared in SERVICE.consumes:
        assert declared.model is not None
        replies.append(bus.subscribe(getattr(bus.topics, declared.topic), declared.model, handlers[declared.handler],
                                     group=declared.group, offset_reset="latest", wanted=pending.is_open,
                                     signed=declared.signed))
    return replies


def _chat(settings: GatewaySettings, bus: Bus, redis: Any, pending: Pending, answers: AnswerRecorder,
          accounts: Accounts) -> tuple[ImageIntake, ChatService]:
    """The protocol-neutral chat flow, with the exact cache and the images for the vision expert (INFERENCE_SERVERS
    says which models take them)."""
    exact = ExactAnswers(redis, settings.topic_namespace, 0) if settings.exact_cache else None
    images = ImageIntake(settings, InferenceConfig.from_settings(settings), ImageStore(redis, settings.topic_namespace))
    return images, ChatService(settings, bus, pending, exact=exact, answers=answers,
                               metering=accounts.metering, images=images,
                               templates=template_select.load(settings, redis),
                               profiles=LiveProfiles(settings.client_profiles, redis, settings.topic_namespace))


def render_error(request: Request, error: OpenAIError) -> JSONResponse:
    """An error in the envelope of the protocol its path belongs to; /v1/models serves both SDKs, so its errors
    are Anthropic's for a client that sends `anthropic-version` (the Anthropic SDK, Claude Code)."""
    protocol = serving(request.url.path)
    if protocol is MODELS and "anthropic-version" in request.headers:
        return JSONResponse(ANTHROPIC.envelope(error), status_code=error.status, headers=error.headers)
    if protocol is not None and protocol.render is not None:
        return protocol.render(error)
    return openai_response(request, error)


def envelope(path: str, error: OpenAIError) -> dict[str, Any]:
    """The error body of the protocol `path` belongs to (the input guard's refusals)."""
    protocol = serving(path)
    return (protocol.envelope if protocol is not None else openai_envelope)(error)


def count_error(request: Request, error: OpenAIError) -> None:
    """An error before the chat flow counted the request, by the endpoint the answers count it under (its mode
    is not known yet: "-"), so a dashboard tells the chat API's errors from the Responses API's."""
    protocol = serving(request.url.path)
    if protocol is None or protocol.render is None:  # a protocol's own rendering counts its own
        GATEWAY_REQUESTS.labels(protocol.name if protocol is not None else "other", "-", str(error.status)).inc()


class EdgeHeaders:
    """One pure-ASGI layer (not BaseHTTPMiddleware, so streams and client disconnects pass through untouched)
    for what every request needs around it: the headers that choose a client profile kept for the chat flow
    (gateway.client_profiles.client_headers), and x-moe-replica on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        profile = user_agent = ""
        for name, value in scope["headers"]:
            if name == b"x-moe-profile":
                profile = value.decode("latin-1").strip()
            elif name == b"user-agent":
                user_agent = value.decode("latin-1")
        client_headers.set((profile, user_agent))
        scope.setdefault("state", {})[ARRIVED] = time.perf_counter()  # the overhead ledger's start (gateway.stream)

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), REPLICA_HEADER]
            await send(message)

        await self.app(scope, receive, send_with_header)
