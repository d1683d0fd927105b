"""Data health of the semantic cache and the experts' scores over HTTP: GET /v1/health/drift/cache (per tenant:
hit rate and false hits, flags, history) and GET /v1/health/drift/scores (per tenant x category x model: the score
in the window against its baseline, flags, history). `hours` (the window), `periods` (how many windows of history,
1-90), `tenant` (404 when the record does not know it), `severity` (only checks of that severity). Admin keys."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from codex_lineage.api import ApiError
from codex_lineage.deps import AdminAccess, Running
from codex_lineage.drift.feedback_signals import CACHE_FLAGS, SCORE_FLAGS, summarise
from codex_lineage.drift.flags import SEVERITIES
from moe_core.runtime import query_params

TENANT = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")


api = APIRouter()


async def _query(request: Request, access: AdminAccess, parts: Running, check: str) -> JSONResponse:
    signals = parts.signals
    hours = query_params.hours(request, parts.settings.drift_window_h)
    periods = query_params.integer(request, "periods", 7, 1, 90)
    severity = query_params.choice(request, "severity", SEVERITIES, None)
    tenant = request.query_params.get("tenant")
    if tenant is not None:
        if not TENANT.match(tenant):
            raise ApiError(400, "tenant must be a tenant id (1-128 letters, digits, ._:@-)", "invalid_value")
        if not await access.sees_tenant(signals.store.pool, tenant):
            raise ApiError(404, f"no tenant {tenant!r} in the record", "not_found")
    run: Callable[..., Awaitable[list[dict[str, Any]]]] = signals.cache if check == "cache" else signals.scores
    found = [c for c in await run(hours, periods, tenant) if access.owns(c["tenant"])]
    listed = [c for c in found if severity is None or c["severity"] == severity]
    return JSONResponse({"object": "list", "check": check, "window_hours": hours,
                         "baseline_hours": signals.cfg.baseline_h, "periods": periods, "data": listed,
                         "summary": summarise(found, CACHE_FLAGS if check == "cache" else SCORE_FLAGS, hours)})


@api.get("/v1/health/drift/cache")
async def cache(request: Request, access: AdminAccess, parts: Running) -> JSONResponse:
    return await _query(request, access, parts, "cache")


@api.get("/v1/health/drift/scores")
async def scores(request: Request, access: AdminAccess, parts: Running) -> JSONResponse:
    return await _query(request, access, parts, "scores")
