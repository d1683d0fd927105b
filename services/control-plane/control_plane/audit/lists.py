"""Lists over the audit store codex-lineage keeps (read-only; the console's requests and tool-calls pages read
them through these routes, so a tenant admin sees nothing the API would not show it):

    GET /v1/audit              the most recent requests: response id, tenant, first and last record, records,
                               stages                                          [?tenant=&hours=&limit=]
    GET /v1/tool-calls         the most recent precision-tool calls (the mcp stage's TaskResults of kind
                               tool): tool, version, arguments, outcome, error code, duration  [same params]

Any key lists its own tenants (a user key too, as for GET /v1/audit/{id}); `?tenant=` narrows to one of them.
Another tenant is the policy's decision (policy/opa/admin.rego, action audit.read: the fleet operator), an audit
record like every cross-tenant read; refused, it is a 404, exactly like a tenant without records."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from fastapi import APIRouter, Request

from control_plane.policy.gate import PolicyGate
from moe_core.access.keystore import KeyStore
from moe_core.access.request_auth import authenticate
from moe_core.audit.store import AuditStore
from moe_core.runtime import query_params
from moe_core.runtime.openai_error import OpenAIError

MAX_HOURS = 24 * 31
RECENT = """
SELECT response_id, min(tenant_id) AS tenant_id, min(broker_ts) AS first, max(broker_ts) AS last,
       count(*) AS records, string_agg(DISTINCT stage, ', ') AS stages
FROM audit_records
WHERE broker_ts > now() - make_interval(hours => $1) AND tenant_id = ANY($2::text[])
GROUP BY response_id ORDER BY max(broker_ts) DESC LIMIT $3
"""
TOOL_CALLS = """
SELECT response_id, tenant_id, broker_ts, payload::jsonb AS result
FROM audit_records
WHERE broker_ts > now() - make_interval(hours => $1) AND tenant_id = ANY($2::text[])
  AND message_type = 'TaskResult' AND payload::jsonb ->> 'kind' = 'tool'
ORDER BY broker_ts DESC LIMIT $3
"""


def tool_call(row: asyncpg.Record) -> dict[str, Any]:
    """One tool call as the list shows it, from its recorded TaskResult."""
    result = row["result"] if isinstance(row["result"], dict) else json.loads(row["result"])
    data = result.get("data") or {}
    error = data.get("error") or {}
    return {"response_id": row["response_id"], "tenant_id": row["tenant_id"], "at": row["broker_ts"].isoformat(),
            "task_id": result.get("task_id"), "tool": data.get("tool"), "version": data.get("version"),
            "args": data.get("args"), "ok": not error and not result.get("error"),
            "error_code": error.get("code"), "content": (result.get("content") or "")[:500],
            "duration_ms": result.get("duration_ms")}


class AuditLists:
    def __init__(self, keys: Callable[[], KeyStore], store: Callable[[], Awaitable[AuditStore]],
                 gate: PolicyGate) -> None:
        self.keys = keys
        self.store = store
        self.gate = gate
        self.router = APIRouter()
        self.router.add_api_route("/v1/audit", self.recent_requests, methods=["GET"])
        self.router.add_api_route("/v1/tool-calls", self.recent_tool_calls, methods=["GET"])

    async def _scope(self, request: Request) -> tuple[list[str], int, int]:
        """The tenants, hours and limit of a list request (raises the API's errors)."""
        key = await authenticate(request, self.keys())
        hours = query_params.integer(request, "hours", 24 * 7, 1, MAX_HOURS)
        limit = query_params.integer(request, "limit", 50, 1, 500)
        tenant = request.query_params.get("tenant")
        if tenant is None:
            return list(key.tenant_ids), hours, limit
        if not 0 < len(tenant) <= 128:
            raise OpenAIError(400, "tenant must be 1 to 128 characters", param="tenant", code="invalid_value")
        if tenant not in key.tenant_ids:  # another tenant's: the policy's decision (the operator), audited
            decision = await self.gate.ask(key, "moe/admin/decision", "audit.read", tenant,
                                           {"tenants": [tenant]}, f"audit-list/{tenant}")
            if not decision.allowed:
                raise OpenAIError(404, f"No audit records of tenant '{tenant}'", code="not_found", param="tenant")
        return [tenant], hours, limit

    async def _fetch(self, query: str, tenants: list[str], hours: int, limit: int) -> list[asyncpg.Record]:
        store = await self.store()
        try:
            return list(await store.pool.fetch(query, hours, tenants, limit))
        except asyncpg.UndefinedTableError:
            raise OpenAIError(503, "the audit store is not set up yet (codex-lineage creates it)", "server_error",
                              code="audit_store_missing") from None

    async def recent_requests(self, request: Request) -> dict[str, Any]:
        tenants, hours, limit = await self._scope(request)
        rows = await self._fetch(RECENT, tenants, hours, limit)
        return {"object": "list", "data": [
            {"response_id": r["response_id"], "tenant_id": r["tenant_id"], "first": r["first"].isoformat(),
             "last": r["last"].isoformat(), "records": r["records"], "stages": r["stages"]} for r in rows]}

    async def recent_tool_calls(self, request: Request) -> dict[str, Any]:
        tenants, hours, limit = await self._scope(request)
        return {"object": "list", "data": [tool_call(r) for r in await self._fetch(TOOL_CALLS, tenants, hours, limit)]}
