"""The guardrails' review for a tenant admin (moe_core.llm.guardrails.quarantine, written by the guardrail stage):

GET /v1/guardrails/quarantine[?tenant_id=&limit=]: the blocked answers of the key's tenants, newest first
    (rule, reason, span classes, counts; not the text).
GET /v1/guardrails/quarantine/{response_id}: one blocked answer with its quarantined text and question.
GET /v1/guardrails/journal[?tenant_id=&limit=]: the self-correction journal: which rule redacted what class
    of text in which answer, how often and why.

An admin key (tenant admin or operator) reads its own tenants' entries only: another tenant's, or an unknown
one, is a 404 alike (nobody learns which ids exist)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Query, Request
from redis.asyncio import Redis

from moe_core.access.keystore import ApiKey, KeyStore
from moe_core.access.request_auth import require_admin
from moe_core.contracts.client_ids import bare_response_id
from moe_core.llm.guardrails.quarantine import Kind, QuarantineStore
from moe_core.runtime.openai_error import OpenAIError


class GuardrailsApi:
    def __init__(self, keys: Callable[[], KeyStore], redis: Redis, namespace: str) -> None:
        self.keys = keys
        self.store = QuarantineStore(redis, namespace, retention_s=0)  # read only: the guardrail stage writes
        self.router = APIRouter()
        self.router.add_api_route("/v1/guardrails/quarantine", self.quarantine, methods=["GET"])
        self.router.add_api_route("/v1/guardrails/quarantine/{response_id}", self.show, methods=["GET"])
        self.router.add_api_route("/v1/guardrails/journal", self.journal, methods=["GET"])

    @staticmethod
    def _tenants(key: ApiKey, tenant_id: str | None) -> list[str]:
        if tenant_id is None:
            return list(key.tenant_ids)
        if tenant_id not in key.tenant_ids:
            raise OpenAIError(404, f"No tenant '{tenant_id}'", param="tenant_id", code="not_found")
        return [tenant_id]

    async def _list(self, request: Request, kind: Kind, tenant_id: str | None, limit: int) -> dict[str, Any]:
        key = await require_admin(request, self.keys())
        found = await self.store.list(self._tenants(key, tenant_id), kind, limit)
        return {"object": "list", "data": [d.listed() for d in found]}

    async def quarantine(self, request: Request, tenant_id: str | None = None,
                         limit: int = Query(default=50, ge=1, le=500)) -> dict[str, Any]:
        return await self._list(request, "block", tenant_id, limit)

    async def journal(self, request: Request, tenant_id: str | None = None,
                      limit: int = Query(default=50, ge=1, le=500)) -> dict[str, Any]:
        return await self._list(request, "redact", tenant_id, limit)

    async def show(self, response_id: str, request: Request) -> dict[str, Any]:
        key = await require_admin(request, self.keys())
        if not 0 < len(response_id) <= 128:
            raise OpenAIError(400, "response_id must be 1 to 128 characters", param="response_id")
        rid = bare_response_id(response_id)
        for tenant in key.tenant_ids:
            decision = await self.store.get(tenant, rid)
            if decision is not None and decision.action == "block":
                return {"object": "guardrail.quarantined", **decision.model_dump()}
        raise OpenAIError(404, f"No quarantined answer '{response_id}'", code="not_found")
