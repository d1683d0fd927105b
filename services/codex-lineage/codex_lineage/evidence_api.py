"""GET /v1/evidence?response_id=… | ?tenant_id=…&since=…&until=…: an evidence bundle as a .tar (the layout:
moe_audit_verify.evidence), with the compliance report at export time (compliance.json) and the requests' data
classes (classification.json). Admin keys only: a tenant admin exports only its own tenants' periods and requests
(another tenant's is a 404 exactly like one with no record; the bundle's compliance report is the fleet's and is
left out of a tenant admin's bundle), the fleet operator any (codex_lineage.access).
A period longer than MOE_EVIDENCE_MAX_DAYS, a missing or doubled scope or a time that does not parse is a 400,
a request or tenant with no record a 404, no checkpoint that can close the scope now a 503."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from codex_lineage.access import Access
from codex_lineage.api import ApiError
from codex_lineage.deps import AdminAccess, Running
from codex_lineage.evidence.gather import ExportError
from codex_lineage.evidence.scope import Scope, build
from codex_lineage.evidence.writer import Material, archive
from codex_lineage.export import close_now
from moe_core.contracts.client_ids import bare_response_id


def _time(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"{name} must be an ISO 8601 date-time", "invalid_value") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _scope(request: Request, max_days: float) -> Scope:
    rid = request.query_params.get("response_id")
    try:
        return Scope.of(bare_response_id(rid) if rid else None, request.query_params.get("tenant_id"),
                        _time(request, "since"), _time(request, "until"), max_days)
    except ExportError as exc:
        raise ApiError(400, str(exc).replace("--until", "until"), "invalid_value") from None


async def _visible(pool: Any, access: Access, scope: Scope) -> None:
    """404 for a scope of another tenant, with the words of the one that has no record (gather)."""
    if scope.response_id:
        if not await access.sees_request(pool, scope.response_id):
            raise ApiError(404, f"no audit record of request {scope.response_id!r}", "not_found")
    elif scope.tenant is not None and not access.owns(scope.tenant):
        raise ApiError(404, f"no audit record of tenant {scope.tenant!r} at all (unknown tenant?)", "not_found")


api = APIRouter()


@api.get("/v1/evidence")
async def evidence(request: Request, access: AdminAccess, parts: Running) -> Response:
    """The bundle; the keyring and TSA chain copied are read per bundle (a rotation changes the keyring), and a
    period no checkpoint has closed is closed now with codex-lineage's key."""
    settings, pool = parts.settings, parts.store.pool
    scope = _scope(request, settings.evidence_max_days)
    await _visible(pool, access, scope)
    try:
        copies = Material.from_files(settings.audit_keyring, settings.audit_tsa_chain)
    except OSError as exc:
        raise ApiError(503, f"the verification material cannot be read: {exc}", "unavailable") from None

    async def compliance() -> dict[str, bytes]:
        text = json.dumps(await parts.compliance.evaluate(parts.sources()), indent=1, ensure_ascii=False,
                          default=str) + "\n"
        return {"compliance.json": text.encode()}

    try:
        files = await build(pool, scope, parts.signer, copies,
                            lambda tenant: close_now(parts.store, parts.anchoring, tenant),
                            compliance if access.fleet else None, parts.classes.current())
    except ExportError as exc:
        code = {404: "not_found", 503: "unavailable"}.get(exc.status, "invalid_value")
        raise ApiError(exc.status, str(exc).replace("--until", "until"), code) from None
    return Response(archive(files, scope.name), media_type="application/x-tar",
                    headers={"Content-Disposition": f'attachment; filename="{scope.name}.tar"'})
