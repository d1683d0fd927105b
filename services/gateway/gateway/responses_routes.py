"""The OpenAI Responses protocol: POST /v1/responses and GET /v1/responses/{id} (gateway.responses_chat)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from gateway.deps import EdgeParts, VerifiedKey, json_body, request_timeout
from gateway.responses_api import parse_responses_request
from gateway.responses_chat import create_response, get_response

router = APIRouter(tags=["responses"])


@router.post("/v1/responses")
async def create_responses(request: Request, key: VerifiedKey, edge: EdgeParts) -> Response:
    """A response: resumed (Last-Event-ID) or parsed, run through the chat flow and stored."""
    if (resumed := await edge.resume.resume(request, key, "responses")) is not None:  # Last-Event-ID
        return resumed
    body = parse_responses_request(await json_body(request))
    return await create_response(edge.chat, edge.responses, body, key, request, request_timeout(request))


@router.get("/v1/responses/{response_id}")
async def retrieve_response(response_id: str, key: VerifiedKey, edge: EdgeParts) -> Response:
    return await get_response(edge.responses, response_id, key)
