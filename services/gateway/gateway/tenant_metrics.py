"""GET /v1/admin/metrics: this edge process's usage counters per tenant, key, mode and model (admin keys only;
the open /metrics has usage by mode only, moe_core.access.usage_metrics). A metrics route: it stays with the
process that counts."""

from __future__ import annotations

from fastapi import APIRouter, Response

from moe_core.access.request_auth import AdminKey
from moe_core.runtime.observability.metrics import TENANT_REGISTRY, metrics_response

router = APIRouter()


@router.get("/v1/admin/metrics", include_in_schema=False)
async def tenant_metrics(_: AdminKey) -> Response:
    body, content_type = metrics_response(TENANT_REGISTRY)
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})
