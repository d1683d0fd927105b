"""GET /v1/provider-status: the rate-limit status of the calling key, the original's endpoint that Claude Code's
integration polls before it sends work (a read of the edge's limits, not a protocol: the control plane's). For
the key and for the tenant it acts for (`X-Moe-Tenant`, else its default): every limit with what this window
has used, what is left and when the window resets — the same counters the edge's limits hook reserves against
(moe_core.access.limits), read, never changed. `status` is `limited` when a limit has no room left, so the next
request is refused (429) until `retry_after_s`; `ok` does not promise admission: a request whose token
estimate exceeds what is left is refused too."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from redis.exceptions import RedisError

from moe_core.access.limits import COUNTERS, Limiter, Limits, Scope, windows
from moe_core.access.request_auth import VerifiedKey
from moe_core.runtime.openai_error import OpenAIError

router = APIRouter(tags=["limits"])


@router.get("/v1/provider-status")
async def provider_status(request: Request, key: VerifiedKey) -> dict[str, Any]:
    limiter: Limiter = request.app.state.limit_reader  # the edge's limit counters (control_plane.app)
    tenant = key.default_tenant
    try:
        scopes = {"key": await _scope(limiter, "key", key.id, key.limits),
                  "tenant": await _scope(limiter, "tenant", tenant, key.limits_of(tenant))}
    except (RedisError, OSError) as exc:
        raise OpenAIError(503, "The limits cannot be read right now; try again shortly.", "server_error",
                          code="limits_unavailable") from exc
    exhausted = [entry for scope in scopes.values() for entry in scope["limits"] if entry["exhausted"]]
    return {
        "object": "provider_status",
        "status": "limited" if exhausted else "ok",
        "retry_after_s": max((e["resets_in_s"] for e in exhausted), default=None),
        "key": {"id": key.id, **scopes["key"]},
        "tenant": {"id": tenant, **scopes["tenant"]},
    }


async def _scope(limiter: Limiter, scope: Scope, ident: str, limits: Limits) -> dict[str, Any]:
    used = await limiter.used(scope, ident)
    found = windows()
    entries = []
    for name, (window_name, kind) in COUNTERS.items():
        limit = getattr(limits, name)
        spent = used[name]
        left = None if limit is None else max(0, round(limit - spent, 6) if kind == "cost" else int(limit - spent))
        entries.append({
            "limit": name, "window": window_name, "unit": kind, "max": limit, "used": spent, "remaining": left,
            "resets_in_s": found[window_name].retry_after_s,
            "exhausted": left is not None and (left < 1 if kind == "requests" else left <= 0),
        })
    return {"limits": entries}
