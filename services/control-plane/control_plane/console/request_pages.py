"""The console's first page, Overview (requests, errors, p50/p95 latency, tokens and cost today and over the last
days, per tenant, as inline SVG charts), and Requests (each answered request as an operator reads it, with
filters and pages). Both read the control plane's own API (GET /v1/requests/overview, GET /v1/requests), so a
tenant admin sees its own tenants only and the operator's cross-tenant reads are policy decisions on the record."""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from control_plane.console.charts import days, overview_charts
from control_plane.console.core import ConsoleCore
from control_plane.console.sessions import Session

FILTERS = ("tenant", "hours", "status", "model", "q")
HOURS = (("1", "last hour"), ("24", "last 24 hours"), ("168", "last 7 days"), ("744", "last 31 days"))


class RequestPages:
    def __init__(self, core: ConsoleCore) -> None:
        self.core = core
        core.page("/overview", self.overview)
        core.page("/requests", self.requests)

    async def overview(self, request: Request, s: Session) -> Response:
        tenant = request.query_params.get("tenant", "").strip()
        found = await self.core.api.call(s.token, "GET", "/v1/requests/overview",
                                         params={"tenant": tenant, "days": 7})
        today = found["today"]
        period = days(date.fromisoformat(found["since"]), found["days"])
        per_tenant = {line["tenant_id"]: {"week": line, "today": None} for line in found["per_tenant"]}
        for line in found["per_day_tenant"]:
            if line["day"] == today:
                per_tenant[line["tenant_id"]]["today"] = line
        today_total = next((line for line in found["per_day"] if line["day"] == today), None)
        return self.core.render(request, "overview.html", s, found=found, tenant=tenant, today_total=today_total,
                                charts=overview_charts(found["per_day"], period),
                                tenants=sorted(per_tenant.items()))

    async def requests(self, request: Request, s: Session) -> Response:
        wanted = request.query_params.get("id", "").strip()
        if wanted:
            return RedirectResponse(f"/console/requests/{quote(wanted, safe='')}", status_code=303)
        chosen = {name: request.query_params.get(name, "").strip() for name in FILTERS}
        chosen["hours"] = chosen["hours"] or "24"
        params: dict[str, Any] = {**chosen, "limit": 50, "cursor": request.query_params.get("cursor", "")}
        found = await self.core.api.call(s.token, "GET", "/v1/requests", params=params)
        older = None
        if found.get("next_cursor"):
            older = "/console/requests?" + urlencode({**{k: v for k, v in chosen.items() if v},
                                                      "cursor": found["next_cursor"]})
        return self.core.render(request, "requests.html", s, rows=found["data"], chosen=chosen, hours=HOURS,
                                statuses=("ok", "partial", "error", "abandoned"), older=older,
                                paged=bool(params["cursor"]))
