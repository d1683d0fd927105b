"""The requests an operator reads, and their overview (control_plane.audit.request_log holds the SQL):

    GET /v1/requests           answered requests, newest first: question (truncated; hidden where the tenant's
                               policy says so), status, latency, models, tokens, cost, cache hit
                               [?tenant=&hours=&status=&model=&q=&limit=&cursor=]; `next_cursor` pages on
    GET /v1/requests/overview  requests, errors, p50/p95 latency, tokens and cost per day and tenant, per tenant,
                               per day and in all [?tenant=&days=]

Scope as everywhere: a key reads its own tenants; `?tenant=` another one is the policy's decision (audit.read: the
fleet operator), an audit record; refused, a 404. With no `?tenant=` the fleet operator reads the whole fleet (a
decision of the same kind, on the record), any other key its own tenants."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from fastapi import APIRouter, Request

from control_plane.audit import request_log
from control_plane.audit.request_log import STATUSES, Filters
from control_plane.policy.gate import PolicyGate
from moe_core.access.keystore import ApiKey, KeyStore
from moe_core.access.request_auth import authenticate
from moe_core.audit.store import AuditStore
from moe_core.runtime import query_params
from moe_core.runtime.openai_error import OpenAIError

MAX_HOURS = 24 * 31
MAX_TEXT = 200


def _cursor(raw: str | None) -> tuple[datetime, str] | None:
    if not raw:
        return None
    try:
        at, rid = base64.urlsafe_b64decode(raw.encode()).decode().split("\n", 1)
        return datetime.fromisoformat(at), rid
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise OpenAIError(400, "cursor is not one this API gave", param="cursor", code="invalid_value") from None


def cursor_of(item: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(f"{item['answered_at']}\n{item['response_id']}".encode()).decode()


def _choice(request: Request, name: str, allowed: tuple[str, ...] | None = None, most: int = 256) -> str | None:
    raw = (request.query_params.get(name) or "").strip()
    if not raw:
        return None
    if len(raw) > most or (allowed is not None and raw not in allowed):
        wanted = f"one of {', '.join(allowed)}" if allowed else f"at most {most} characters"
        raise OpenAIError(400, f"{name} must be {wanted}", param=name, code="invalid_value")
    return raw


class RequestsApi:
    def __init__(self, keys: Callable[[], KeyStore], store: Callable[[], Awaitable[AuditStore]], gate: PolicyGate,
                 hidden_questions: frozenset[str] = frozenset()) -> None:
        """hidden_questions: the tenants whose policy hides their questions from these lists (`*`: every one)."""
        self.keys = keys
        self.store = store
        self.gate = gate
        self.hidden_tenants = sorted(hidden_questions)
        self.router = APIRouter()
        self.router.add_api_route("/v1/requests", self.list_requests, methods=["GET"])
        self.router.add_api_route("/v1/requests/overview", self.overview, methods=["GET"])

    def hidden(self, tenant: str) -> bool:
        return "*" in self.hidden_tenants or tenant in self.hidden_tenants

    async def _tenants(self, request: Request, key: ApiKey) -> list[str] | None:
        """The tenants read (None: the whole fleet, the operator's)."""
        tenant = _choice(request, "tenant", most=128)
        if tenant is not None and tenant in key.tenant_ids:
            return [tenant]
        if tenant is None and key.role != "operator":
            return list(key.tenant_ids)
        decision = await self.gate.ask(key, "moe/admin/decision", "audit.read", tenant or "*",
                                       {"tenants": [tenant or "*"]}, f"requests/{tenant or '*'}")
        if not decision.allowed:
            raise OpenAIError(404, f"No requests of tenant '{tenant}'", code="not_found", param="tenant")
        return [tenant] if tenant is not None else None

    async def _fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        store = await self.store()
        try:
            return list(await store.pool.fetch(query, *args))
        except asyncpg.UndefinedTableError:
            raise OpenAIError(503, "the audit store is not set up yet (codex-lineage creates it)", "server_error",
                              code="audit_store_missing") from None

    async def list_requests(self, request: Request) -> dict[str, Any]:
        key = await authenticate(request, self.keys())
        tenants = await self._tenants(request, key)
        hours = query_params.integer(request, "hours", 24, 1, MAX_HOURS)
        limit = query_params.integer(request, "limit", 50, 1, 500)
        filters = Filters(status=_choice(request, "status", STATUSES), model=_choice(request, "model"),
                          text=_choice(request, "q", most=MAX_TEXT), before=_cursor(request.query_params.get("cursor")))
        until = datetime.now(UTC)
        rows = await self._fetch(request_log.PAGE, *request_log.page_args(
            tenants, until - timedelta(hours=hours), until, filters, self.hidden_tenants, limit + 1))
        data = [request_log.row(r, self.hidden(r["tenant_id"])) for r in rows[:limit]]
        return {"object": "list", "data": data, "next_cursor": cursor_of(data[-1]) if len(rows) > limit else None}

    async def overview(self, request: Request) -> dict[str, Any]:
        key = await authenticate(request, self.keys())
        tenants = await self._tenants(request, key)
        days = query_params.integer(request, "days", 7, 1, 31)
        now = datetime.now(UTC)
        since = datetime(now.year, now.month, now.day, tzinfo=UTC) - timedelta(days=days - 1)
        out: dict[str, Any] = {"object": "requests.overview", "days": days, "since": since.date().isoformat(),
                               "today": now.date().isoformat(), "tenants": tenants, "total": None,
                               "per_day": [], "per_tenant": [], "per_day_tenant": []}
        for r in await self._fetch(request_log.OVERVIEW, tenants, since, now + timedelta(seconds=1)):
            line = {"day": r["day"].isoformat() if r["day"] else None, "tenant_id": r["tenant_id"],
                    **request_log.figures(r)}
            if r["all_days"] and r["all_tenants"]:
                out["total"] = line
            elif r["all_tenants"]:
                out["per_day"].append(line)
            elif r["all_days"]:
                out["per_tenant"].append(line)
            else:
                out["per_day_tenant"].append(line)
        return out
