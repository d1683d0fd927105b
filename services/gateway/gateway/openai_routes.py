"""The OpenAI Chat Completions protocol: POST /v1/chat/completions (JSON or SSE, gateway.openai_chat)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from gateway.deps import EdgeParts, VerifiedKey, json_body, request_timeout
from gateway.openai_api import parse_request
from gateway.openai_chat import complete

router = APIRouter(tags=["openai"])


@router.post("/v1/chat/completions")
async def chat_completions(request: Request, key: VerifiedKey, edge: EdgeParts) -> Response:
    """A chat completion: resumed (Last-Event-ID) or parsed, published as a ChatRequest and answered."""
    if (resumed := await edge.resume.resume(request, key, "chat")) is not None:  # Last-Event-ID: the rest
        return resumed
    body = parse_request(await json_body(request))
    return await complete(edge.chat, body, key.default_tenant, request, request_timeout(request))
