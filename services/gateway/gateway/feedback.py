"""POST /v1/feedback {response_id, rating 1..5, comment?}: a user's rating of one of their answers.

When this replica receives an Answer it is waiting for, it records the answer's owner (tenant) and what
the rating needs (models used, cache key, question, knowledge-graph sources) in Redis with a TTL, before
the client sees the answer. A rating is accepted only for a recorded answer of one of the key's tenants
(unknown or foreign: 404), once per answer (409), and published as Feedback to `feedback`: the experts'
scores, the semantic cache (1-2 flags the entry) and the knowledge graph learn from it. The experts'
scores are the answer's tenant's own; `approved: true` (admin keys only) makes it a global signal too.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from redis.exceptions import RedisError

from gateway.auth import authenticate
from gateway.keystore import KeyStore
from gateway.openai_api import OpenAIError, parse_json_body
from gateway.settings import GatewaySettings
from moe_core.bus import Bus
from moe_core.contracts import Answer, Feedback, ModelUse, deadline_in
from moe_core.contracts.client_ids import bare_response_id
from moe_core.stores import redis_client

log = logging.getLogger(__name__)
FEEDBACK_DEADLINE_S = 3600.0


class FeedbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    response_id: str = Field(min_length=1, max_length=160, description="The answer's id (or its client-facing id)")
    rating: StrictInt = Field(ge=1, le=5)
    comment: str = Field(default="", max_length=2000)
    approved: bool = Field(default=False, description="Admin keys only: count this rating for every tenant "
                                                      "(a global score), not only for the answer's tenant")

    def rid(self) -> str:
        return bare_response_id(self.response_id)


class AnswerRecord(BaseModel):
    tenant_id: str
    models_used: list[ModelUse] = Field(default_factory=list)
    cache_key: str | None = None
    question: str = ""
    graph_refs: list[str] = Field(default_factory=list)


class FeedbackApi:
    def __init__(self, settings: GatewaySettings, bus: Bus, store: Callable[[], KeyStore]) -> None:
        self.settings = settings
        self.bus = bus
        self.store = store
        self.redis = redis_client(settings.redis_url)
        self.prefix = f"gateway:answer:{settings.topic_namespace}"
        self.router = APIRouter()
        self.router.add_api_route("/v1/feedback", self.post_feedback, methods=["POST"])

    async def close(self) -> None:
        await self.redis.aclose()

    async def record(self, answer: Answer) -> None:
        """Remember who owns this answer and what a rating of it concerns."""
        record = AnswerRecord(
            tenant_id=answer.tenant_id, models_used=answer.models_used, cache_key=answer.cache_key,
            question=answer.question, graph_refs=[s.ref for s in answer.sources if s.kind == "graph"])
        await self.redis.set(f"{self.prefix}:{answer.response_id}", record.model_dump_json(),
                             ex=self.settings.feedback_window_s)

    async def record_quietly(self, answer: Answer) -> None:
        try:
            await self.record(answer)
        except (RedisError, OSError) as exc:  # the answer matters more than its later rating
            log.warning("answer %s not recorded for feedback: %s", answer.response_id, exc)

    def recording(self, deliver: Callable[[Any], Awaitable[None]],
                  waiting: Callable[[str], bool]) -> Callable[[Answer], Awaitable[None]]:
        """Wrap the answers subscriber: record the answers this replica waits for, then hand them on."""
        async def on_answer(answer: Answer) -> None:
            if waiting(answer.response_id):
                await self.record_quietly(answer)
            await deliver(answer)
        return on_answer

    async def post_feedback(self, request: Request) -> JSONResponse:
        key = await authenticate(request, self.store())
        body = parse_json_body(await request.body(), FeedbackBody)
        if body.approved and key.role != "admin":
            raise OpenAIError(403, "Only an admin key may approve a rating as a global signal.", "permission_error",
                              param="approved", code="insufficient_role")
        rid = body.rid()
        raw = await self.redis.get(f"{self.prefix}:{rid}")
        record = AnswerRecord.model_validate_json(raw) if raw else None
        if record is None or record.tenant_id not in key.tenant_ids:  # foreign looks exactly like unknown
            raise OpenAIError(404, f"No response '{body.response_id}' to rate (unknown, expired or not yours)",
                              param="response_id", code="response_not_found")
        if not await self.redis.set(f"{self.prefix}:{rid}:rated", str(body.rating), nx=True,
                                    ex=self.settings.feedback_window_s):
            raise OpenAIError(409, f"Response '{body.response_id}' was already rated", param="response_id",
                              code="already_rated")
        feedback = Feedback(response_id=rid, tenant_id=record.tenant_id, deadline_at=deadline_in(FEEDBACK_DEADLINE_S),
                            rating=body.rating, models_used=record.models_used, cache_key=record.cache_key,
                            question=record.question, graph_refs=record.graph_refs, comment=body.comment,
                            approved=body.approved)
        try:
            await self.bus.publish(feedback, self.bus.topics.feedback)
        except BaseException:
            await self.redis.delete(f"{self.prefix}:{rid}:rated")  # not published: may be sent again
            raise
        return JSONResponse({"object": "feedback", "response_id": rid, "rating": body.rating,
                             "status": "recorded"}, status_code=202)
