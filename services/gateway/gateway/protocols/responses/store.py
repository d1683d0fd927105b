"""Stored Responses API responses (Redis, with a TTL: `MOE_RESPONSES_TTL_S`): the `response` object for
GET /v1/responses/{id}, and the conversation it ended (earlier turns, its input, its output as the
assistant's turn) for a later request's `previous_response_id`. Every record belongs to the tenant that
created it: another tenant's id reads as not found."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import RedisError

from moe_core.contracts import ChatMessage
from moe_core.runtime.openai_error import OpenAIError


class StoredResponse(BaseModel):
    tenant_id: str
    key_id: str
    response: dict[str, Any]
    conversation: list[ChatMessage]  # without instructions: they apply to one response only


class ResponseStore:
    def __init__(self, redis: Redis, namespace: str, ttl_s: int) -> None:
        self.redis = redis
        self.prefix = f"{namespace}:responses"
        self.ttl_s = ttl_s

    async def save(self, record: StoredResponse) -> None:
        rid = record.response["id"]
        await self.redis.set(f"{self.prefix}:{rid}", record.model_dump_json(), ex=self.ttl_s)

    async def load(self, response_id: str, tenant_id: str, param: str | None = None) -> StoredResponse:
        """The stored response of this tenant; a 404 in the OpenAI envelope otherwise."""
        try:
            raw = await self.redis.get(f"{self.prefix}:{response_id}")
        except RedisError:
            raise OpenAIError(503, "stored responses are unavailable (Redis); try again later", "server_error",
                              param=param, code="store_unavailable") from None
        record = StoredResponse.model_validate_json(raw) if raw else None
        if record is None or record.tenant_id != tenant_id:
            raise OpenAIError(404, f"Response with id '{response_id}' not found.", param=param, code="not_found")
        return record
