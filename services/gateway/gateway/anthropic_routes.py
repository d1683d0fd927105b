"""The Anthropic Messages protocol: POST /v1/messages and /v1/messages/count_tokens. Every error on these
paths, the key check's included, is rendered in Anthropic's envelope (gateway.anthropic_errors, chosen by
gateway.app's error handlers)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from gateway.anthropic_api import CountTokensRequest, parse_messages_request
from gateway.anthropic_chat import count_tokens, create_message
from gateway.deps import EdgeParts, VerifiedKey, json_body, request_timeout

router = APIRouter(tags=["anthropic"])
PREFIX = "/v1/messages"  # the paths whose errors are Anthropic's


@router.post("/v1/messages")
async def messages(request: Request, key: VerifiedKey, edge: EdgeParts) -> Response:
    """The Anthropic Messages API (JSON or SSE, gateway.anthropic_chat)."""
    if (resumed := await edge.resume.resume(request, key, "messages")) is not None:  # Last-Event-ID
        return resumed
    body = parse_messages_request(await json_body(request))
    return await create_message(edge.chat, body, key.default_tenant, request, request_timeout(request))


@router.post("/v1/messages/count_tokens")
async def messages_count_tokens(request: Request, _: VerifiedKey, edge: EdgeParts) -> Response:
    """Anthropic's token counting (what Claude Code calls before a turn)."""
    body = parse_messages_request(await json_body(request), CountTokensRequest)
    return count_tokens(body, edge.settings.model_map)
