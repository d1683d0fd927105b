"""Per-key limits on the endpoints whose cost no token budget sees: uploads (POST /v1/memory/documents: a
PDF is read, every chunk embedded), audit verification (GET /v1/audit/{id}?verify=true: the request's whole
hash chain re-read and re-hashed), knowledge exports (POST /v1/knowledge/export: a tenant's subgraph), stream
resumes (Last-Event-ID: the request's topics read back) and precision-tool calls over HTTP (the mcp service's
/invoke and /mcp: the tool workers, shared with the planner's preflight). Each call is counted before any work, on
the gateway's limiter (moe_core.access.limits: one atomic Redis script per call, fleet-wide); past the limit it is a
429 with Retry-After (the rest of the minute) in the API's own envelope. The failed-key-lookup limit per
client address is moe_core.access.key_guard's."""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.exceptions import RedisError

from moe_core.access.keystore import ApiKey
from moe_core.access.limits import MAX_RATE, Limiter, LimitExceeded
from moe_core.runtime.observability.metrics import GATEWAY_LIMITED
from moe_core.runtime.openai_error import OpenAIError

log = logging.getLogger(__name__)
Endpoint = Literal["uploads", "audit_verifications", "exports", "stream_resumes", "tool_calls"]


class ThrottleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    limit_uploads_per_minute: int = Field(default=30, ge=1, le=MAX_RATE, description="Per key: POST "
                                          "/v1/memory/documents calls a minute (429 past it)")
    limit_audit_verifications_per_minute: int = Field(default=30, ge=1, le=MAX_RATE, description="Per key: GET "
                                                      "/v1/audit/{id}?verify=true calls a minute")
    limit_exports_per_minute: int = Field(default=10, ge=1, le=MAX_RATE, description="Per key: POST "
                                          "/v1/knowledge/export calls a minute")
    limit_stream_resumes_per_minute: int = Field(default=60, ge=1, le=MAX_RATE, description="Per key: stream "
                                                 "resumes (a request with Last-Event-ID) a minute")
    limit_tool_calls_per_minute: int = Field(default=120, ge=1, le=MAX_RATE, description="Per key: HTTP calls to "
                                             "the mcp service's /invoke and /mcp (each MCP message) a minute")
    limit_failed_key_lookups_per_minute: int = Field(default=30, ge=1, le=MAX_RATE, description="Per client "
                                                     "address: key lookups that found no key, a minute; past it "
                                                     "keys not verified lately are answered 429 unseen")


class Throttle:
    def __init__(self, limiter: Limiter, settings: ThrottleSettings) -> None:
        self.limiter = limiter
        self.settings = settings

    async def spend(self, key: ApiKey | str, endpoint: Endpoint) -> None:
        """Count one call of `endpoint` by `key` (or a key's id): LimitExceeded (429) past the limit, 503 if Redis is
        down."""
        name = f"{endpoint}_per_minute"
        ident = key if isinstance(key, str) else key.id
        counter = self.limiter.counter("key", ident, name, getattr(self.settings, f"limit_{name}"))
        try:
            await self.limiter.take(counter)
        except LimitExceeded as exc:
            GATEWAY_LIMITED.labels(exc.scope, exc.limit).inc()
            raise
        except (RedisError, OSError) as exc:  # like the token budgets: an unchecked limit is not a limit
            log.error("endpoint limits unavailable: %s", exc)
            raise OpenAIError(503, "Limits cannot be checked right now; try again shortly.", "server_error",
                              code="limits_unavailable") from exc
