"""POST /v1/feedback {response_id, rating 1..5, comment?}: a user's rating of one of their answers.

The edge records each answer's owner and what a rating needs (moe_core.llm.answer_records) before the client
sees it. A rating is accepted only for a recorded answer of one of the key's tenants (unknown or foreign:
404), once per answer (409), and published as Feedback to `feedback`: the experts' scores, the semantic
cache (1-2 flags the entry) and the knowledge graph learn from it. The experts' scores are the answer's
tenant's own; `approved: true` (admin keys only) makes it a global signal too.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from redis.asyncio import Redis

from moe_core.access.request_auth import VerifiedKey
from moe_core.contracts import Feedback, deadline_in
from moe_core.contracts.client_ids import bare_response_id
from moe_core.llm.answer_records import AnswerRecords
from moe_core.runtime.bus import Bus
from moe_core.runtime.openai_error import OpenAIError, parse_json_body

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


class FeedbackApi:
    def __init__(self, bus: Bus, redis: Redis, namespace: str, window_s: int) -> None:
        self.bus = bus
        self.records = AnswerRecords(redis, namespace, window_s)
        self.router = APIRouter()
        self.router.add_api_route("/v1/feedback", self.post_feedback, methods=["POST"])

    async def post_feedback(self, request: Request, key: VerifiedKey) -> JSONResponse:
        body = parse_json_body(await request.body(), FeedbackBody)
        if body.approved and key.role != "admin":
            raise OpenAIError(403, "Only an admin key may approve a rating as a global signal.", "permission_error",
                              param="approved", code="insufficient_role")
        rid = body.rid()
        record = await self.records.get(rid)
        if record is None or record.tenant_id not in key.tenant_ids:  # foreign looks exactly like unknown
            raise OpenAIError(404, f"No response '{body.response_id}' to rate (unknown, expired or not yours)",
                              param="response_id", code="response_not_found")
        if not await self.records.mark_rated(rid, body.rating):
            raise OpenAIError(409, f"Response '{body.response_id}' was already rated", param="response_id",
                              code="already_rated")
        feedback = Feedback(response_id=rid, tenant_id=record.tenant_id, deadline_at=deadline_in(FEEDBACK_DEADLINE_S),
                            rating=body.rating, models_used=record.models_used, cache_key=record.cache_key,
                            question=record.question, graph_refs=record.graph_refs, comment=body.comment,
                            approved=body.approved)
        try:
            await self.bus.publish(feedback, self.bus.topics.feedback)
        except BaseException:
            await self.records.unmark_rated(rid)  # not published: may be sent again
            raise
        return JSONResponse({"object": "feedback", "response_id": rid, "rating": body.rating,
                             "status": "recorded"}, status_code=202)
