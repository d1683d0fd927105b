"""Console page for tenant documents held for review (a protected domain: POST /v1/memory/documents): the signed-in
key's tenant's documents with their review status and approvals so far, approve (optional note) or reject (reason
required). Reads and decisions go through the control plane's own API (/v1/memory/documents, /approve, /reject),
so the policy's four-eyes rules are the API's."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import Response

from control_plane.console import decisions
from control_plane.console.core import ConsoleCore
from control_plane.console.sessions import Session

STATES = ("pending_review", "searchable", "all")


class DocumentPages:
    def __init__(self, core: ConsoleCore) -> None:
        self.core = core
        core.page("/documents", self.documents)
        core.page("/documents/{document_id}/{decision}", self.decide, "POST")

    async def documents(self, request: Request, s: Session, *, status: int = 200, **context: Any) -> Response:
        state = request.query_params.get("status", "pending_review")
        state = state if state in STATES else "pending_review"
        docs = (await self.core.api.call(s.token, "GET", "/v1/memory/documents", params={"status": state}))["data"]
        return self.core.render(request, "documents.html", s, status=status, docs=docs, state=state,
                                states=STATES, **context)

    async def decide(self, request: Request, s: Session) -> Response:
        document_id = quote(request.path_params["document_id"], safe="")
        return await decisions.decide(self.core, request, s, f"/v1/memory/documents/{document_id}", self.documents,
                                      "/console/documents")
