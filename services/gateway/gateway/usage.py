"""Usage per day, tenant, key, mode and model in Postgres (one upserted row per combination), one row per
settled request (`usage_requests`: what it was charged, answered or abandoned, settled by its owner, the
replica that resumed it, or the sweeper), the same figures as Prometheus counters, and `GET /v1/usage`.

`GET /v1/usage?tenant_id=&key_id=&start=YYYY-MM-DD&end=YYYY-MM-DD` (UTC days, both included; default:
this month so far). A user key sees its own key (the default) or one of its own tenants (403 otherwise);
an admin key sees any key or tenant, or the whole fleet with no filter.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import asyncpg
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from gateway.auth import authenticate
from gateway.keystore import KeyStore
from gateway.limits import Limiter, Limits
from gateway.openai_api import OpenAIError
from gateway.usage_metrics import count_usage

MAX_DAYS = 366
# One settled request: its row in usage_requests and, only if that row is new, added to its day's row.
RECORD_REQUEST = (
    "WITH new AS (INSERT INTO usage_requests (response_id, day, tenant_id, key_id, mode, model, prompt_tokens, "
    "completion_tokens, cost_micros, outcome, settled_by) VALUES ($9, (now() AT TIME ZONE 'UTC')::date, $1, $2, $3, "
    "$4, $6, $7, $8, $10, $11) ON CONFLICT (response_id) DO NOTHING RETURNING day) "
    "INSERT INTO usage_daily AS u (day, tenant_id, key_id, mode, model, requests, prompt_tokens, completion_tokens, "
    "cost_micros) SELECT day, $1::text, $2::text, $3::text, $4::text, $5::bigint, $6::bigint, $7::bigint, $8::bigint "
    "FROM new "
    "ON CONFLICT (day, tenant_id, key_id, mode, model) DO UPDATE SET requests = u.requests + $5, "
    "prompt_tokens = u.prompt_tokens + $6, completion_tokens = u.completion_tokens + $7, "
    "cost_micros = u.cost_micros + $8 RETURNING 1")


class UsageFigures(BaseModel):
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost: float = Field(default=0.0, description="In the currency of the configured model prices")


class UsageRow(UsageFigures):
    date: date
    mode: str = Field(description="The fleet mode that served the requests")
    model: str = Field(description="The model id the client asked for")


class UsageReport(BaseModel):
    object: str = "usage"
    tenant_id: str | None
    key_id: str | None
    start: date
    end: date
    totals: UsageFigures
    data: list[UsageRow] = Field(description="One row per day, mode and model, ordered by day")
    limits: Limits | None = Field(default=None, description="The limits of the key or tenant asked about")
    current: dict[str, int | float] | None = Field(
        default=None, description="Counters now held against those limits (this minute, day and month)")


class UsageStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def record(self, *, tenant_id: str, key_id: str, mode: str, model: str, requests: int,
                     prompt_tokens: int, completion_tokens: int, cost_micros: int | None,
                     response_id: str | None = None, outcome: str = "answered", settled_by: str = "owner") -> bool:
        """Add usage to its day's row (and Prometheus). With a response id: once per response — its row in
        usage_requests (answered or abandoned, and who settled it) is written in the same statement, and a
        response recorded before changes nothing (False)."""
        if response_id is not None:
            added = await self.pool.fetchval(RECORD_REQUEST, tenant_id, key_id, mode, model, requests, prompt_tokens,
                                             completion_tokens, cost_micros or 0, response_id, outcome, settled_by)
            if added is None:
                return False
        else:
            await self._add(tenant_id, key_id, mode, model, requests, prompt_tokens, completion_tokens, cost_micros)
        count_usage(tenant_id, key_id, mode, model, requests, prompt_tokens, completion_tokens, cost_micros)
        return True

    async def _add(self, tenant_id: str, key_id: str, mode: str, model: str, requests: int, prompt_tokens: int,
                   completion_tokens: int, cost_micros: int | None) -> None:
        await self.pool.execute(
            "INSERT INTO usage_daily AS u (day, tenant_id, key_id, mode, model, requests, prompt_tokens, "
            "completion_tokens, cost_micros) VALUES ((now() AT TIME ZONE 'UTC')::date, $1, $2, $3, $4, $5, $6, $7, $8) "
            "ON CONFLICT (day, tenant_id, key_id, mode, model) DO UPDATE SET requests = u.requests + $5, "
            "prompt_tokens = u.prompt_tokens + $6, completion_tokens = u.completion_tokens + $7, "
            "cost_micros = u.cost_micros + $8",
            tenant_id, key_id, mode, model, requests, prompt_tokens, completion_tokens, cost_micros or 0)

    async def rows(self, tenant_id: str | None, key_id: str | None, start: date, end: date) -> list[UsageRow]:
        records = await self.pool.fetch(
            "SELECT day, mode, model, sum(requests) AS requests, sum(prompt_tokens) AS prompt, "
            "sum(completion_tokens) AS completion, sum(cost_micros) AS cost FROM usage_daily "
            "WHERE day BETWEEN $1 AND $2 AND ($3::text IS NULL OR tenant_id = $3) "
            "AND ($4::text IS NULL OR key_id = $4) "
            "GROUP BY day, mode, model ORDER BY day, mode, model", start, end, tenant_id, key_id)
        return [UsageRow(date=r["day"], mode=r["mode"], model=r["model"], requests=r["requests"],
                         prompt_tokens=r["prompt"], completion_tokens=r["completion"],
                         total_tokens=r["prompt"] + r["completion"], cost=r["cost"] / 1_000_000) for r in records]


def _totals(rows: list[UsageRow]) -> UsageFigures:
    return UsageFigures(requests=sum(r.requests for r in rows), prompt_tokens=sum(r.prompt_tokens for r in rows),
                        completion_tokens=sum(r.completion_tokens for r in rows),
                        total_tokens=sum(r.total_tokens for r in rows), cost=round(sum(r.cost for r in rows), 6))


def _day(raw: str | None, default: date, name: str) -> date:
    if raw is None:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise OpenAIError(400, f"{name} must be a date (YYYY-MM-DD)", param=name) from None


class UsageApi:
    def __init__(self, usage: Callable[[], UsageStore], store: Callable[[], KeyStore], limiter: Limiter) -> None:
        self.usage = usage
        self.store = store
        self.limiter = limiter
        self.router = APIRouter()
        self.router.add_api_route("/v1/usage", self.get_usage, methods=["GET"], response_model=UsageReport,
                                  summary="Requests, tokens and spend by day, mode and model")

    async def get_usage(self, request: Request, tenant_id: str | None = None, key_id: str | None = None,
                        start: str | None = None, end: str | None = None) -> UsageReport:
        key = await authenticate(request, self.store())
        if key.role != "admin":
            if tenant_id is not None and tenant_id not in key.tenant_ids:
                raise OpenAIError(403, f"This API key does not belong to tenant '{tenant_id}'.", "permission_error",
                                  param="tenant_id", code="wrong_tenant")
            if key_id is not None and key_id != key.id:
                raise OpenAIError(403, "A user key sees only its own usage.", "permission_error", param="key_id",
                                  code="insufficient_role")
            if tenant_id is None:
                key_id = key.id
        today = datetime.now(UTC).date()
        first, last = _day(start, today.replace(day=1), "start"), _day(end, today, "end")
        if first > last or last - first > timedelta(days=MAX_DAYS):
            raise OpenAIError(400, f"start must not be after end, and the period at most {MAX_DAYS} days",
                              param="start")
        rows = await self.usage().rows(tenant_id, key_id, first, last)
        report = UsageReport(tenant_id=tenant_id, key_id=key_id, start=first, end=last, totals=_totals(rows), data=rows)
        if key_id is not None:
            owner = key if key_id == key.id else await self.store().get(key_id)
            report.limits = owner.limits if owner else None
            report.current = await self.limiter.used("key", key_id)
        elif tenant_id is not None:
            tenant = await self.store().tenant(tenant_id)
            report.limits = tenant.limits if tenant else None
            report.current = await self.limiter.used("tenant", tenant_id)
        return report
