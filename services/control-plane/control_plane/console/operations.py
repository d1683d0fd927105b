"""Console pages for running the fleet: quarantine review, knowledge imports and their diffs, a request's audit
timeline and lineage (the list of requests: request_pages.py), graph statistics. Reads and decisions go through
the control plane's own APIs (/graph/*, /v1/knowledge/imports, /v1/audit/{id}: codex-lineage's signed records,
the signed-in key's own tenants)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import Response

from control_plane.console import decisions
from control_plane.console.api import ApiError
from control_plane.console.core import ConsoleCore
from control_plane.console.lineage_graph import elements, provenance_elements
from control_plane.console.sessions import Session


def _id(request: Request, name: str) -> str:
    return quote(request.path_params[name], safe="")


class OperationPages:
    def __init__(self, core: ConsoleCore) -> None:
        self.core = core
        core.page("/quarantine", self.quarantine)
        core.page("/quarantine/{item_id}/{decision}", self.decide, "POST")
        core.page("/imports", self.imports)
        core.page("/imports/{cs_id}", self.import_detail)
        core.page("/imports/{cs_id}/{decision}", self.decide_import, "POST")
        core.page("/requests/{response_id}", self.request_detail)
        core.page("/requests/{response_id}/lineage", self.lineage)
        core.page("/graph", self.graph)

    async def quarantine(self, request: Request, s: Session, *, status: int = 200, **context: Any) -> Response:
        state = request.query_params.get("status", "pending")
        items = (await self.core.api.call(s.token, "GET", "/graph/quarantine", params={"status": state}))["data"]
        return self.core.render(request, "quarantine.html", s, status=status, items=items, state=state, **context)

    async def decide(self, request: Request, s: Session) -> Response:
        return await decisions.decide(self.core, request, s, f"/graph/quarantine/{_id(request, 'item_id')}",
                                      self.quarantine, "/console/quarantine")

    async def imports(self, request: Request, s: Session) -> Response:
        state = request.query_params.get("status", "pending")
        sets = (await self.core.api.call(s.token, "GET", "/v1/knowledge/imports", params={"status": state}))["data"]
        return self.core.render(request, "imports.html", s, sets=sets, state=state)

    async def import_detail(self, request: Request, s: Session, *, status: int = 200, **context: Any) -> Response:
        cs = await self.core.api.call(s.token, "GET", f"/v1/knowledge/imports/{_id(request, 'cs_id')}")
        wanted = {cs.get("importer_principal")} | {a.get("principal") for a in cs["approvals"]}
        names = {p: await self._name(s, p) for p in wanted if p}
        return self.core.render(request, "imports_detail.html", s, status=status, cs=cs, names=names, **context)

    async def _name(self, s: Session, principal: str) -> str:
        """A principal's display name, for the reviewer ('' when it has none or this key may not read it)."""
        try:
            found = await self.core.api.call(s.token, "GET", f"/v1/admin/principals/{quote(principal, safe='')}")
        except ApiError:
            return ""
        return str(found.get("display_name") or "")

    async def decide_import(self, request: Request, s: Session) -> Response:
        cs_id = _id(request, "cs_id")
        return await decisions.decide(self.core, request, s, f"/v1/knowledge/imports/{cs_id}", self.import_detail,
                                      f"/console/imports/{cs_id}", reason_required=False)

    async def request_detail(self, request: Request, s: Session) -> Response:
        audit = await self.core.api.call(s.token, "GET", f"/v1/audit/{_id(request, 'response_id')}",
                                         params={"verify": "true"})
        return self.core.render(request, "requests_detail.html", s, audit=audit)

    async def lineage(self, request: Request, s: Session) -> Response:
        """The request's lineage as a graph (drawn in the browser by Cytoscape.js: static/lineage.js)."""
        rid = _id(request, "response_id")
        found = await self.core.api.call(s.token, "GET", f"/v1/lineage/{rid}")  # (_id: already quoted)
        graph = elements(found.get("events") or [])
        graph += provenance_elements(found.get("provenance"), {e["data"]["id"] for e in graph})
        kinds = [e["data"].get("kind") for e in graph]
        return self.core.render(request, "requests_lineage.html", s, response_id=found.get("response_id", rid),
                                elements=graph, runs=kinds.count("run"), datasets=kinds.count("dataset"),
                                facts=kinds.count("fact"), imports=kinds.count("import"),
                                documents=kinds.count("document"), classification=found.get("classification"))

    async def graph(self, request: Request, s: Session) -> Response:
        stats = await self.core.api.call(s.token, "GET", "/graph/stats")
        return self.core.render(request, "graph.html", s, stats=stats)
