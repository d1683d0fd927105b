"""gateway: the OpenAI-compatible front door of the fleet."""

from __future__ import annotations

import json
import os
import socket
import time
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import template_select
from gateway.accounts import Accounts
from gateway.anthropic_api import CountTokensRequest, parse_messages_request
from gateway.anthropic_chat import count_tokens, create_message, error_response
from gateway.audit_api import AuditApi
from gateway.auth import authenticate
from gateway.chat import ChatService
from gateway.chat_extras import chat_extras
from gateway.console import mount_console
from gateway.edge import InputLimits
from gateway.feedback import FeedbackApi
from gateway.graph_api import GraphApi
from gateway.key_guard import KeyGuard
from gateway.keystore import KeyStore
from gateway.knowledge_api import KnowledgeApi
from gateway.memory_api import MemoryApi
from gateway.openai_api import MODES, OpenAIError, parse_request
from gateway.openai_chat import complete
from gateway.ops_api import OpsApi
from gateway.pending import Pending
from gateway.responses_api import parse_responses_request
from gateway.responses_chat import create_response, get_response
from gateway.responses_store import ResponseStore
from gateway.resume import StreamResume
from gateway.settings import GatewaySettings
from gateway.settle_sweep import SettleSweeper
from gateway.stream_registry import StreamRegistry
from gateway.throttle import Throttle
from moe_core.bus import Bus, wait_positioned
from moe_core.contracts import Answer, AnswerDelta, Progress
from moe_core.exact_cache import ExactAnswers
from moe_core.observability.metrics import GATEWAY_REQUESTS
from moe_core.service import create_service_app

REPLICA = f"{socket.gethostname()}:{os.getpid()}"
CREATED = int(time.time())
CREATED_AT = datetime.fromtimestamp(CREATED, UTC).isoformat().replace("+00:00", "Z")


def create_app(
    settings: GatewaySettings | None = None,
    *,
    bus: Bus | None = None,
    keystore: KeyStore | None = None,
    manage_broker: bool = True,
) -> FastAPI:
    settings = settings or GatewaySettings()
    bus = bus or Bus(settings)
    pending = Pending()
    holder: dict[str, KeyStore] = {}
    feedback = FeedbackApi(settings, bus, lambda: holder["store"])
    # Every replica reads every reply partition (no group) and keeps the ones it is waiting for.
    accounts = Accounts(settings, bus, feedback.redis, lambda: holder["store"])  # admin API, limits, usage
    # owner + metadata for POST /v1/feedback; usage settled against the key's limits before delivery
    on_answer = feedback.recording(accounts.metering.settling(pending.deliver), pending.is_open)
    # Records of requests this replica does not wait for are dropped by key, unparsed.
    replies = [
        bus.subscribe(bus.topics.answers, Answer, on_answer, group=False, offset_reset="latest",
                      wanted=pending.is_open),
        bus.subscribe(bus.topics.progress, Progress, pending.deliver, group=False, offset_reset="latest",
                      wanted=pending.is_open),
        bus.subscribe(bus.topics.deltas, AnswerDelta, pending.deliver, group=False, offset_reset="latest",
                      wanted=pending.is_open),
    ]
    exact = ExactAnswers(feedback.redis, settings.topic_namespace, 0) if settings.exact_cache else None
    extras = chat_extras(settings, bus, feedback.redis)  # images for the vision expert, client housekeeping
    chat = ChatService(settings, bus, pending, exact=exact, on_local_answer=feedback.record_quietly,
                       metering=accounts.metering, images=extras.images, housekeeping=extras.housekeeping)
    graph = GraphApi(settings, bus, lambda: holder["store"])
    throttle = Throttle(accounts.limiter, settings)  # per-key limits of uploads, verifications, exports, resumes
    audit = AuditApi(settings, lambda: holder["store"], throttle)  # GET /v1/audit/{id}, /v1/lineage/{id}
    responses = ResponseStore(feedback.redis, settings.topic_namespace, settings.responses_ttl_s)
    chat.streams = StreamRegistry(feedback.redis, settings.topic_namespace, grace_s=settings.resume_grace_s,
                                  deadline_grace_s=settings.deadline_grace_s)  # resumable streams
    accounts.metering.streams = chat.streams  # a dropped stream's usage waits for its resume
    sweeper = SettleSweeper(accounts.metering)  # settles the requests of a replica that died
    resume = StreamResume(chat, chat.streams, responses, throttle, on_answer=feedback.record_quietly)  # Last-Event-ID
    knowledge = KnowledgeApi(bus, lambda: holder["store"], lambda: graph.db, throttle)  # bundles, four-eyes imports
    ops = OpsApi(settings, feedback.redis, lambda: holder["store"], lambda: graph.db)  # operators' endpoints
    memory = MemoryApi(settings, settings.topic_namespace, bus, lambda: holder["store"], feedback.redis,  # documents
                       throttle)
    if keystore is not None:
        holder["store"] = keystore

    async def open_store() -> None:
        if "store" not in holder:
            holder["store"] = await KeyStore.connect(settings.postgres_dsn, settings.key_cache_ttl_s,
                                                     settings.key_negative_ttl_s)
        await accounts.start()
        sweeper.start()
        for subscriber in replies:
            await wait_positioned(subscriber)

    async def close_store() -> None:
        await chat.aclose()
        await sweeper.close()
        await accounts.close()
        if keystore is None and "store" in holder:
            await holder.pop("store").close()

    async def postgres_ready() -> None:
        await holder["store"].ping()

    app = create_service_app(settings, bus, checks={"postgres": postgres_ready},
                             on_startup=[open_store],
                             on_shutdown=[close_store, graph.close, feedback.close, audit.close, extras.aclose],
                             manage_broker=manage_broker)
    app.state.pending = pending
    app.state.key_guard = KeyGuard(accounts.limiter, settings.limit_failed_key_lookups_per_minute)  # gateway.auth
    app.add_middleware(InputLimits, limits=settings)  # body size, JSON depth, list and string sizes
    app.add_middleware(ReplicaHeader)
    app.include_router(graph.router)
    app.include_router(audit.router)
    app.include_router(knowledge.router)
    app.include_router(feedback.router)
    app.include_router(accounts.router)
    app.include_router(ops.router)
    app.include_router(memory.router)
    mount_console(app, settings, bus, feedback.redis, lambda: holder["store"], audit.store)  # /console (admin UI)

    @app.exception_handler(OpenAIError)
    async def openai_error(_: Request, exc: OpenAIError) -> JSONResponse:
        GATEWAY_REQUESTS.labels("api", "-", str(exc.status)).inc()
        return JSONResponse(exc.body(), status_code=exc.status, headers=getattr(exc, "headers", None))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if exc.status_code == 404 else None
        error = OpenAIError(exc.status_code, str(exc.detail), code=code)
        if request.url.path.startswith("/v1/messages"):  # e.g. a 405 there: in Anthropic's envelope
            return error_response(error)
        return JSONResponse(error.body(), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]  # e.g. an admin API body: the field that is wrong, as parse_object does
        param = ".".join(str(p) for p in first["loc"] if p != "body") or None
        return JSONResponse(OpenAIError(400, f"invalid request: {param or 'body'}: {first['msg']}", param=param,
                                        code="invalid_value").body(), status_code=400)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        key = await authenticate(request, holder["store"])
        if (resumed := await resume.resume(request, key, "chat")) is not None:  # Last-Event-ID: the rest
            return resumed
        try:
            data = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise OpenAIError(400, "the request body is not valid JSON") from None
        return await complete(chat, parse_request(data), key.default_tenant, request, _timeout_header(request))

    @app.post("/v1/messages")
    async def messages(request: Request) -> Response:
        """The Anthropic Messages API; every error in Anthropic's envelope."""
        try:
            key = await authenticate(request, holder["store"])
            if (resumed := await resume.resume(request, key, "messages")) is not None:  # Last-Event-ID
                return resumed
            try:
                data = json.loads(await request.body())
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise OpenAIError(400, "the request body is not valid JSON") from None
            return await create_message(chat, parse_messages_request(data), key.default_tenant, request,
                                        _timeout_header(request))
        except OpenAIError as exc:
            return error_response(exc)

    @app.post("/v1/messages/count_tokens")
    async def messages_count_tokens(request: Request) -> Response:
        """Anthropic's token counting (what Claude Code calls before a turn); errors in Anthropic's envelope."""
        try:
            await authenticate(request, holder["store"])
            try:
                data = json.loads(await request.body())
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise OpenAIError(400, "the request body is not valid JSON") from None
            return count_tokens(parse_messages_request(data, CountTokensRequest), settings.model_map)
        except OpenAIError as exc:
            return error_response(exc)

    @app.post("/v1/responses")
    async def create_responses(request: Request) -> Response:
        """The OpenAI Responses API (gateway.responses_chat)."""
        key = await authenticate(request, holder["store"])
        if (resumed := await resume.resume(request, key, "responses")) is not None:  # Last-Event-ID
            return resumed
        try:
            data = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise OpenAIError(400, "the request body is not valid JSON") from None
        return await create_response(chat, responses, parse_responses_request(data), key, request,
                                     _timeout_header(request))

    @app.get("/v1/responses/{response_id}")
    async def retrieve_response(response_id: str, request: Request) -> Response:
        key = await authenticate(request, holder["store"])
        return await get_response(responses, response_id, key)

    @app.get("/v1/models")
    async def list_models(request: Request) -> dict[str, object]:
        await authenticate(request, holder["store"])
        # One body both SDKs read: OpenAI's list plus Anthropic's paging fields.
        ids = list(MODES) + template_select.model_ids(chat.templates)  # moe-orchestrator@<expert template>
        return {"object": "list", "data": [_model(m, chat.templates) for m in ids], "has_more": False,
                "first_id": ids[0],
                "last_id": ids[-1]}

    @app.get("/v1/models/{model_id}")
    async def get_model(model_id: str, request: Request) -> dict[str, object]:
        await authenticate(request, holder["store"])
        found = template_select.resolve(model_id, settings.model_map)  # a client's own id (model map), @template
        if found is None:
            raise OpenAIError(404, f"The model '{model_id}' does not exist", param="model", code="model_not_found")
        mode, _, name = found
        if name is not None and name not in chat.templates:
            raise template_select.not_found(name, chat.templates, "model")
        return {**_model(f"{mode}@{name}" if name else mode, chat.templates), "id": model_id, "display_name": model_id}

    return app


class ReplicaHeader:
    """Adds x-moe-replica to every response. Pure ASGI (not BaseHTTPMiddleware), so streams and client
    disconnects pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("x-moe-replica", REPLICA)
            await send(message)

        await self.app(scope, receive, send_with_header)


def _timeout_header(request: Request) -> float | None:
    raw = request.headers.get("x-request-timeout")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 86_400:
        raise OpenAIError(400, "X-Request-Timeout must be a number of seconds > 0", param="X-Request-Timeout")
    return value


def _model(mode: str, templates: template_select.Templates) -> dict[str, object]:
    """A model entry in the OpenAI shape, with Anthropic's fields (type, display_name, created_at) too."""
    return {"id": mode, "object": "model", "created": CREATED, "owned_by": "moe-sovereign", "type": "model",
            "display_name": mode, "created_at": CREATED_AT,
            "description": template_select.describe(mode, templates)}
