"""gateway: the OpenAI-compatible front door of the fleet."""

from __future__ import annotations

import json
import os
import socket
import time

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.auth import authenticate
from gateway.chat import ChatService
from gateway.keystore import KeyStore
from gateway.openai_api import MODES, OpenAIError, parse_request
from gateway.pending import Pending
from gateway.settings import GatewaySettings
from moe_core.bus import Bus, wait_positioned
from moe_core.contracts import Answer, Progress
from moe_core.observability.metrics import GATEWAY_REQUESTS
from moe_core.service import create_service_app

REPLICA = f"{socket.gethostname()}:{os.getpid()}"
CREATED = int(time.time())


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
    # Every replica reads every reply partition (no group) and keeps the ones it is waiting for.
    replies = [
        bus.subscribe(bus.topics.answers, Answer, pending.deliver, group=False, offset_reset="latest"),
        bus.subscribe(bus.topics.progress, Progress, pending.deliver, group=False, offset_reset="latest"),
    ]
    chat = ChatService(settings, bus, pending)
    holder: dict[str, KeyStore] = {}
    if keystore is not None:
        holder["store"] = keystore

    async def open_store() -> None:
        if "store" not in holder:
            holder["store"] = await KeyStore.connect(settings.postgres_dsn, settings.key_cache_ttl_s)
        for subscriber in replies:
            await wait_positioned(subscriber)

    async def close_store() -> None:
        if keystore is None and "store" in holder:
            await holder.pop("store").close()

    async def postgres_ready() -> None:
        await holder["store"].ping()

    app = create_service_app(settings, bus, checks={"postgres": postgres_ready},
                             on_startup=[open_store], on_shutdown=[close_store], manage_broker=manage_broker)
    app.state.pending = pending

    @app.middleware("http")
    async def replica_header(request: Request, call_next):
        response = await call_next(request)
        response.headers["x-moe-replica"] = REPLICA
        return response

    @app.exception_handler(OpenAIError)
    async def openai_error(_: Request, exc: OpenAIError) -> JSONResponse:
        GATEWAY_REQUESTS.labels("api", "-", str(exc.status)).inc()
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if exc.status_code == 404 else None
        return JSONResponse(OpenAIError(exc.status_code, str(exc.detail), code=code).body(),
                            status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(OpenAIError(400, f"invalid request: {exc.errors()[0]['msg']}").body(), status_code=400)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        key = await authenticate(request, holder["store"])
        try:
            data = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise OpenAIError(400, "the request body is not valid JSON") from None
        return await chat.complete(parse_request(data), key.default_tenant, _timeout_header(request))

    @app.get("/v1/models")
    async def list_models(request: Request) -> dict[str, object]:
        await authenticate(request, holder["store"])
        return {"object": "list", "data": [_model(m) for m in MODES]}

    @app.get("/v1/models/{model_id}")
    async def get_model(model_id: str, request: Request) -> dict[str, object]:
        await authenticate(request, holder["store"])
        if model_id not in MODES:
            raise OpenAIError(404, f"The model '{model_id}' does not exist", param="model", code="model_not_found")
        return _model(model_id)

    return app


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


def _model(mode: str) -> dict[str, object]:
    return {"id": mode, "object": "model", "created": CREATED, "owned_by": "moe-sovereign",
            "description": MODES[mode]}
