"""GET /v1/catalog (`?q=` words, `?kind=` topic|table|store|graph_domain|document_set|job,
`?classification=` a data class),
GET /v1/catalog/lineage (`?node_id=`, `depth` 1..20, `direction` both|upstream|downstream: the declared lineage
graph in Marquez's shape) and GET /v1/catalog/{id} (one entry). Admin keys only. An unknown entry or node is 404,
a bad parameter 400. A tenant admin sees the fleet-wide entries (topics, tables, stores, jobs) and its own tenants'
(graph domains, document sets: an entry whose facets name a tenant); another tenant's entry is a 404 like an
unknown one, and is neither listed nor a node of the lineage graph. The fleet operator sees all
(codex_lineage.access)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from codex_lineage.access import Access
from codex_lineage.api import ApiError
from codex_lineage.catalog.entries import KINDS, search
from codex_lineage.catalog.graph import DIRECTIONS, lineage
from codex_lineage.deps import AdminAccess, Running
from codex_lineage.parts import Parts
from moe_core.runtime import query_params

api = APIRouter()


async def _seen(access: Access, parts: Parts) -> list[dict[str, Any]]:
    """The catalog's entries now that the caller sees (the tenants' graph domains and document sets come from the
    record)."""
    return [i for i in await parts.catalog_items() if access.sees(i["facets"].get("tenant"))]


@api.get("/v1/catalog")
async def listing(request: Request, access: AdminAccess, parts: Running) -> JSONResponse:
    kind = query_params.choice(request, "kind", KINDS, None)
    everything = await _seen(access, parts)
    known = sorted({i["classification"]["class"] for i in everything if "classification" in i})
    wanted = request.query_params.get("classification")
    if wanted is not None and wanted not in known:
        raise ApiError(400, f"classification must be one of {', '.join(known)}", "invalid_value")
    found = [i for i in search(everything, request.query_params.get("q"), kind)
             if wanted is None or i.get("classification", {}).get("class") == wanted]
    return JSONResponse({"object": "list", "data": found})


@api.get("/v1/catalog/lineage")
async def graph(request: Request, access: AdminAccess, parts: Running) -> JSONResponse:
    node = request.query_params.get("node_id")
    if not node:
        raise ApiError(400, "node_id is required (an id from /v1/catalog)", "invalid_value")
    depth = query_params.number(request, "depth", 2, 1, 20)
    if depth != int(depth):
        raise ApiError(400, "depth must be a whole number between 1 and 20", "invalid_value")
    direction = query_params.choice(request, "direction", DIRECTIONS, "both") or "both"
    try:
        return JSONResponse(lineage(await _seen(access, parts), node, int(depth), direction))
    except KeyError:
        raise ApiError(404, f"no catalog entry {node!r}", "not_found") from None


@api.get("/v1/catalog/{entry_id:path}")
async def entry(entry_id: str, access: AdminAccess, parts: Running) -> JSONResponse:
    found = next((i for i in await _seen(access, parts) if i["id"] == entry_id), None)
    if found is None:
        raise ApiError(404, f"no catalog entry {entry_id!r}", "not_found")
    return JSONResponse(found)
