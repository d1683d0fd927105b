"""GET /v1/catalog (`?q=` words, `?kind=` topic|table|store|graph_domain|document_set|job,
`?classification=` a data class),
GET /v1/catalog/lineage (`?node_id=`, `depth` 1..20, `direction` both|upstream|downstream: the declared lineage
graph in Marquez's shape) and GET /v1/catalog/{id} (one entry). Admin keys only. An unknown entry or node is 404,
a bad parameter 400. A tenant admin sees the fleet-wide entries (topics, tables, stores, jobs) and its own tenants'
(graph domains, document sets: an entry whose facets name a tenant); another tenant's entry is a 404 like an
unknown one, and is neither listed nor a node of the lineage graph. The fleet operator sees all
(codex_lineage.access)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from codex_lineage.access import Access
from codex_lineage.api import ApiError, require_admin
from codex_lineage.catalog.entries import KINDS, search
from codex_lineage.catalog.graph import DIRECTIONS, lineage
from moe_core.runtime import query_params


def catalog_router(items: Callable[[], Awaitable[list[dict[str, Any]]]], get_keys: Callable[[], Any]) -> APIRouter:
    """`items`: the catalog's entries now (the tenants' graph domains and document sets come from the record)."""
    api = APIRouter()

    async def seen(access: Access) -> list[dict[str, Any]]:
        return [i for i in await items() if access.sees(i["facets"].get("tenant"))]

    @api.get("/v1/catalog")
    async def listing(request: Request) -> JSONResponse:
        try:
            access = await require_admin(request, get_keys())
            kind = query_params.choice(request, "kind", KINDS, None)
            everything = await seen(access)
            known = sorted({i["classification"]["class"] for i in everything if "classification" in i})
            wanted = request.query_params.get("classification")
            if wanted is not None and wanted not in known:
                raise ApiError(400, f"classification must be one of {', '.join(known)}", "invalid_value")
        except ApiError as exc:
            return exc.response()
        found = [i for i in search(everything, request.query_params.get("q"), kind)
                 if wanted is None or i.get("classification", {}).get("class") == wanted]
        return JSONResponse({"object": "list", "data": found})

    @api.get("/v1/catalog/lineage")
    async def graph(request: Request) -> JSONResponse:
        try:
            access = await require_admin(request, get_keys())
            node = request.query_params.get("node_id")
            if not node:
                raise ApiError(400, "node_id is required (an id from /v1/catalog)", "invalid_value")
            depth = query_params.number(request, "depth", 2, 1, 20)
            if depth != int(depth):
                raise ApiError(400, "depth must be a whole number between 1 and 20", "invalid_value")
            direction = query_params.choice(request, "direction", DIRECTIONS, "both") or "both"
            try:
                return JSONResponse(lineage(await seen(access), node, int(depth), direction))
            except KeyError:
                raise ApiError(404, f"no catalog entry {node!r}", "not_found") from None
        except ApiError as exc:
            return exc.response()

    @api.get("/v1/catalog/{entry_id:path}")
    async def entry(request: Request, entry_id: str) -> JSONResponse:
        try:
            access = await require_admin(request, get_keys())
            found = next((i for i in await seen(access) if i["id"] == entry_id), None)
            if found is None:
                raise ApiError(404, f"no catalog entry {entry_id!r}", "not_found")
        except ApiError as exc:
            return exc.response()
        return JSONResponse(found)

    return api
