"""The fleet's one read of a request's lineage (docs/api.md#audit-and-lineage): its OpenLineage run events, the
provenance of the knowledge-graph facts it used (moe_core.audit.fact_lineage) and its data classification (what its
tenant's class is, what its lineage reached and what of that its class forbids: moe_core.policy.classes, passed in as
`classify`: the audit layer does not read policy). Served by the control plane's `GET /v1/lineage/{id}`; codex-lineage's
older paths answer from it too, deprecated. Who may read which request is the caller's business."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moe_core.audit.fact_lineage import FactLineage
from moe_core.audit.store import AuditStore

Classify = Callable[[str, list[dict[str, Any]]], dict[str, Any]]  # (tenant, events) -> classification


async def request_lineage(store: AuditStore, response_id: str, classify: Classify,
                          owner: str | None = None) -> dict[str, Any]:
    """The lineage of one request (the caller has checked it may read it) of tenant `owner`: by default the tenant
    its record names, else the one its events name (lineage posted from outside the fleet); with no tenant, no
    provenance and no classification."""
    events = await store.lineage(response_id)
    owner = owner or await store.owner(response_id) or next(filter(None, map(_tenant_of, events)), None)
    body: dict[str, Any] = {"object": "lineage.request", "response_id": response_id, "tenant_id": owner,
                            "events": events}
    if owner is not None:
        body["provenance"] = await FactLineage(store).answer(response_id, [owner])
        body["classification"] = {"tenant_id": owner, **classify(owner, events)}
    return body


def _tenant_of(event: dict[str, Any]) -> str | None:
    tenant = ((event.get("run") or {}).get("facets") or {}).get("moe_tenant") or {}
    return tenant.get("tenantId")
