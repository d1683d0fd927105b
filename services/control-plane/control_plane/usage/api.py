"""`GET /v1/usage?tenant_id=&key_id=&start=YYYY-MM-DD&end=YYYY-MM-DD`: usage by day, mode and model (UTC days,
both included; default: this month so far), read from the rows written from the edge's usage topic
(control_plane.usage.recorder, moe_core.access.usage_store).
A user key sees its own key (the default) or one of its own tenants (403 otherwise); a tenant admin its
tenants and their keys (default: its first tenant; another tenant's or its key: 404); the fleet operator any key
or tenant, or the whole fleet with no filter, each read of another tenant a policy decision and an audit record
(policy/opa/admin.rego, usage.read).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from fastapi import APIRouter

from control_plane.policy.gate import PolicyGate
from moe_core.access.keystore import ApiKey, KeyStore
from moe_core.access.limits import Limiter
from moe_core.access.request_auth import VerifiedKey
from moe_core.access.usage_store import UsageFigures, UsageReport, UsageRow, UsageStore
from moe_core.runtime.openai_error import OpenAIError

MAX_DAYS = 366


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
    def __init__(self, usage: Callable[[], UsageStore], store: Callable[[], KeyStore], limiter: Limiter,
                 gate: PolicyGate) -> None:
        self.gate = gate
        self.usage = usage
        self.store = store
        self.limiter = limiter
        self.router = APIRouter()
        self.router.add_api_route("/v1/usage", self.get_usage, methods=["GET"], response_model=UsageReport,
                                  summary="Requests, tokens and spend by day, mode and model")

    async def get_usage(self, key: VerifiedKey, tenant_id: str | None = None, key_id: str | None = None,
                        start: str | None = None, end: str | None = None) -> UsageReport:
        """The key (a FastAPI dependency: moe_core.access.request_auth) decides what it may see; an admin key's
        reach beyond its own tenants is the policy's decision."""
        if key.role != "user":
            tenant_id = await self._admin_scope(key, tenant_id, key_id)
        else:
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

    async def _admin_scope(self, key: ApiKey, tenant_id: str | None, key_id: str | None) -> str | None:
        """The tenant an admin reads (its own by default); another tenant's usage only where the policy allows."""
        if tenant_id is None and key_id is None and key.role == "admin":
            tenant_id = key.default_tenant
        tenants = [tenant_id] if tenant_id is not None else []
        if key_id is not None:
            owner = await self.store().get(key_id)
            tenants += list(owner.tenant_ids) if owner is not None else ["?"]
        if not tenants:
            tenants = ["*"]  # the whole fleet
        if not set(tenants) <= set(key.tenant_ids):
            decision = await self.gate.ask(key, "moe/admin/decision", "usage.read", tenants[0],
                                           {"tenants": sorted(set(tenants))}, f"usage:{tenant_id or key_id or '*'}")
            if not decision.allowed:
                raise OpenAIError(404, "No usage of this tenant or key", param="tenant_id" if tenant_id else "key_id",
                                  code="not_found")
        return tenant_id
