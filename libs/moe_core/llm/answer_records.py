"""What a rating of an answer needs, kept in Redis for the feedback window: the edge records it when it
receives an Answer it is waiting for (before the client sees it), the control plane's POST /v1/feedback
reads it. The one reader and writer of the `gateway:answer:` keys (value: AnswerRecord JSON; TTL:
MOE_FEEDBACK_WINDOW_S; `<key>:rated` marks an answer rated once)."""

from __future__ import annotations

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.asyncio import Redis

from moe_core.contracts import Answer, ModelUse

PREFIX = "gateway:answer"


class AnswerRecordSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    feedback_window_s: int = Field(default=7 * 86400, ge=60, description="How long an answer can be rated")


class AnswerRecord(BaseModel):
    tenant_id: str
    models_used: list[ModelUse] = Field(default_factory=list)
    cache_key: str | None = None
    question: str = ""
    graph_refs: list[str] = Field(default_factory=list)


class AnswerRecords:
    def __init__(self, redis: Redis, namespace: str, ttl_s: int) -> None:
        self.redis = redis
        self.prefix = f"{PREFIX}:{namespace}"
        self.ttl_s = ttl_s

    def entry(self, answer: Answer) -> tuple[str, str]:
        """The key and value `record` writes (with ttl_s): for a caller that sends them with another write
        (gateway.feedback: in the settlement's claim)."""
        return self.key(answer.response_id), self.record_of(answer).model_dump_json()

    @staticmethod
    def record_of(answer: Answer) -> AnswerRecord:
        return AnswerRecord(
            tenant_id=answer.tenant_id, models_used=answer.models_used, cache_key=answer.cache_key,
            question=answer.question, graph_refs=[s.ref for s in answer.sources if s.kind == "graph"])

    def key(self, response_id: str) -> str:
        return f"{self.prefix}:{response_id}"

    def hit_head(self, response_id: str, tenant_id: str, question: str) -> tuple[str, str]:
        """An exact repeat's record before its entry is read: the key and the JSON of its request's fields, left
        open for the entry's cache key and models (moe_core.access.edge_hit writes them in the read's round trip;
        the result reads as `entry` gives it for the hit's Answer)."""
        head = AnswerRecord(tenant_id=tenant_id, question=question).model_dump_json(
            include={"tenant_id", "question", "graph_refs"})
        return self.key(response_id), head[:-1] + ","

    async def record(self, answer: Answer) -> None:
        """Remember who owns this answer and what a rating of it concerns."""
        key, value = self.entry(answer)
        await self.redis.set(key, value, ex=self.ttl_s)

    async def get(self, response_id: str) -> AnswerRecord | None:
        raw = await self.redis.get(f"{self.prefix}:{response_id}")
        return AnswerRecord.model_validate_json(raw) if raw else None

    async def mark_rated(self, response_id: str, rating: int) -> bool:
        """False when the answer was rated before."""
        return bool(await self.redis.set(f"{self.prefix}:{response_id}:rated", str(rating), nx=True, ex=self.ttl_s))

    async def unmark_rated(self, response_id: str) -> None:
        await self.redis.delete(f"{self.prefix}:{response_id}:rated")
