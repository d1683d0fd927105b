"""The console's data-health page: the latest graph-ingest runs with their drift flags, and the semantic cache's
and the experts' scores' checks with their history per window, each on the ok/info/warn/crit ladder. Read
server-side from codex-lineage's API (GET /v1/health/drift, /v1/health/drift/cache and /scores; codex_client.py)
with the signed-in key; nothing of the drift logic lives here.

Scope as on the other pages: a tenant admin sees its own tenants (one call per tenant), the fleet operator every
tenant (or one, ?tenant=). codex-lineage down or failing: the page says so (503), never a 500."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from control_plane.console.api import ApiError
from control_plane.console.codex_client import CodexCalls, CodexLineage, CodexUnavailable
from control_plane.console.core import ConsoleCore
from control_plane.console.sessions import Session
from control_plane.console.settings import ConsoleSettings

LADDER = ("ok", "info", "warn", "crit")  # codex-lineage's severity ladder, lowest first
RUNS = 50  # ingest runs listed


def worst(items: list[dict[str, Any]]) -> str:
    found = [str(i["severity"]) for i in items if i.get("severity") in LADDER]
    return max(found, key=LADDER.index) if found else "ok"


class DataHealthPage:
    def __init__(self, core: ConsoleCore, settings: ConsoleSettings) -> None:
        self.core = core
        self.codex = CodexLineage(settings.codex_lineage_url, settings.codex_lineage_timeout_s)
        core.page("/health", self.page)

    async def _tenants(self, request: Request, s: Session) -> list[str] | None:
        """The tenants to ask for (None: all, the operator's view)."""
        key = await self.core.store().verify(s.token)  # (the guard has just accepted it)
        if key is None:
            raise ApiError(401, "This key is no longer valid: sign in again.")
        wanted = request.query_params.get("tenant", "").strip()
        if key.role == "operator":
            return [wanted] if wanted else None
        if wanted and wanted not in key.tenant_ids:
            raise ApiError(403, f"Tenant {wanted!r} is not one of this key's tenants.")
        return [wanted] if wanted else list(key.tenant_ids)

    async def page(self, request: Request, s: Session) -> Response:
        tenants = await self._tenants(request, s)
        q = request.query_params
        window = {"hours": q.get("hours", "").strip() or None}
        periods = q.get("periods", "").strip() or "7"
        try:
            async with self.codex.calls(s.token) as codex:
                runs, cache, scores = await asyncio.gather(
                    self._runs(codex, tenants, window), self._checks(codex, "cache", tenants, window, periods),
                    self._checks(codex, "scores", tenants, window, periods))
        except CodexUnavailable as exc:
            return self.core.render(request, "health.html", s, status=503, unavailable=str(exc), tenants=tenants,
                                    tenant=q.get("tenant", ""))
        return self.core.render(
            request, "health.html", s, unavailable=None, tenants=tenants, tenant=q.get("tenant", ""),
            runs=runs, cache=cache, scores=scores, ladder=LADDER,
            overall={"runs": worst(runs), "cache": worst(cache["data"]), "scores": worst(scores["data"])})

    async def _runs(self, codex: CodexCalls, tenants: list[str] | None, window: dict[str, Any]) -> list[dict[str, Any]]:
        datasets = [None] if tenants is None else [f"graph/{t}" for t in tenants]
        found = await asyncio.gather(*(codex.get("/v1/health/drift", dataset=d, limit=RUNS, **window)
                                       for d in datasets))
        runs = [r for body in found if body for r in body["data"]]
        return sorted(runs, key=lambda r: str(r.get("recorded_at")), reverse=True)[:RUNS]

    async def _checks(self, codex: CodexCalls, check: str, tenants: list[str] | None, window: dict[str, Any],
                      periods: str) -> dict[str, Any]:
        path = f"/v1/health/drift/{check}"
        found = await asyncio.gather(*(codex.get(path, tenant=t, periods=periods, **window)
                                       for t in ([None] if tenants is None else tenants)))
        answered = [body for body in found if body]
        data = [c for body in answered for c in body["data"]]
        data.sort(key=lambda c: (-LADDER.index(c.get("severity", "ok")), c.get("tenant", ""),
                                 c.get("category", ""), c.get("model", "")))
        first = answered[0] if answered else {}
        return {"data": data, "window_hours": first.get("window_hours"), "periods": first.get("periods"),
                "baseline_hours": first.get("baseline_hours")}
