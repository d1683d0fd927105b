"""What every protocol router's handlers are given (FastAPI dependencies) or call first: the edge's parts,
the request's verified key (moe_core.access.request_auth: 401/403/429/503 before the handler runs; the
key is then the request's for limits and budgets, whatever protocol it came through), its JSON body and its
X-Request-Timeout."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Protocol

from fastapi import Depends, Request

from moe_core.access.request_auth import VerifiedKey  # noqa: F401 (re-exported for the routers)
from moe_core.runtime.openai_error import OpenAIError

if TYPE_CHECKING:
    from fastapi import Response

    from gateway.chat import ChatService
    from gateway.protocols.responses.store import ResponseStore
    from gateway.settings import GatewaySettings
    from gateway.stream_registry import Api
    from moe_core.access.keystore import ApiKey


class Resume(Protocol):
    """The rest of a dropped stream (gateway.resume.StreamResume; it renders through the routers' frame encoders,
    which import this module, so the routers see it by this face)."""

    async def resume(self, http: Request, key: ApiKey, api: Api) -> Response | None: ...


@dataclass(frozen=True)
class Edge:
    """The parts of the edge the handlers use, built once by gateway.app.create_app (`app.state.edge`)."""

    settings: GatewaySettings
    chat: ChatService  # protocol-neutral: publish a request, follow its events
    responses: ResponseStore  # stored Responses API responses (previous_response_id, GET)
    resume: Resume  # Last-Event-ID: the rest of a dropped stream


async def edge(request: Request) -> Edge:
    """(async: FastAPI runs a plain function dependency in its thread pool, a thread hop on every request)"""
    parts: Edge = request.app.state.edge
    return parts


EdgeParts = Annotated[Edge, Depends(edge)]


async def json_body(request: Request) -> Any:
    """The request body as JSON, else a 400 (read after a resume is ruled out: a resume has no new body)."""
    try:
        return json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise OpenAIError(400, "the request body is not valid JSON") from None


def request_timeout(request: Request) -> float | None:
    """X-Request-Timeout: the request's own deadline in seconds (0 < t <= 86400), else the default."""
    raw = request.headers.get("x-request-timeout")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 86_400:
        raise OpenAIError(400, "X-Request-Timeout must be a number of seconds greater than 0 and at most 86400",
                          param="X-Request-Timeout")
    return value
