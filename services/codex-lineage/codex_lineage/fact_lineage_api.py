"""Where an answer's facts came from and where an import's or a document's facts went (moe_core.audit.fact_lineage,
read from the signed record): GET /v1/lineage/answers/{response_id} (upstream: the graph-rag runs, the facts they
used, the imports that wrote them with their approvals, the source documents), GET /v1/lineage/imports/{id} and
GET /v1/lineage/documents/{id} (downstream: the facts written and every answer that used one). Admin keys, and only
their own tenants: an id of another tenant is a 404 like an unknown one; the fleet operator reads every tenant's
(codex_lineage.access). The answers' path is deprecated: the control plane's GET /v1/lineage/{id} carries the same graph
(`provenance`) with the request's events and classification; until it goes, it answers with a Deprecation header and
a Link to its successor."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from codex_lineage.access import Access
from codex_lineage.api import ApiError, successor
from codex_lineage.deps import AdminAccess, Running
from moe_core.audit.checkpoints import tenants as all_tenants
from moe_core.audit.fact_lineage import FactLineage
from moe_core.audit.store import AuditStore

MAX_ID = 200
Lookup = Callable[[FactLineage, str, list[str]], Awaitable[dict[str, Any] | None]]


api = APIRouter()


async def _answer(access: Access, store: AuditStore, what: str, ident: str, lookup: Lookup) -> JSONResponse:
    if not 0 < len(ident) <= MAX_ID:
        raise ApiError(400, f"a {what} id has 1 to {MAX_ID} characters", "invalid_value")
    tenants = await all_tenants(store) if access.fleet else list(access.tenants)
    found = await lookup(FactLineage(store), ident, tenants)
    if found is None:
        raise ApiError(404, f"no {what} {ident!r} in the key's tenants", "not_found")
    return JSONResponse(found)


@api.get("/v1/lineage/answers/{response_id}")
async def upstream(response_id: str, access: AdminAccess, parts: Running) -> JSONResponse:
    rid = response_id.removeprefix("chatcmpl-")
    found = await _answer(access, parts.store, "answer", rid, lambda f, i, t: f.answer(i, t))
    found.headers.update(successor(rid))
    return found


@api.get("/v1/lineage/imports/{import_id}")
async def from_import(import_id: str, access: AdminAccess, parts: Running) -> JSONResponse:
    return await _answer(access, parts.store, "import", import_id, lambda f, i, t: f.import_downstream(i, t))


@api.get("/v1/lineage/documents/{document_id}")
async def from_document(document_id: str, access: AdminAccess, parts: Running) -> JSONResponse:
    return await _answer(access, parts.store, "document", document_id, lambda f, i, t: f.document_downstream(i, t))
