"""Console pages of the guardrails' review: the signed-in admin's tenants' blocked answers (quarantine) and
redactions (the self-correction journal), and one blocked answer with its quarantined text. Read through the
control plane's /v1/guardrails API (control_plane.policy.guardrails_api), so the same tenant scoping applies."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import Response

from control_plane.console.core import ConsoleCore
from control_plane.console.sessions import Session


class GuardrailPages:
    def __init__(self, core: ConsoleCore) -> None:
        self.core = core
        core.page("/guardrails", self.overview)
        core.page("/guardrails/{response_id}", self.detail)

    async def overview(self, request: Request, s: Session) -> Response:
        blocked = (await self.core.api.call(s.token, "GET", "/v1/guardrails/quarantine"))["data"]
        redacted = (await self.core.api.call(s.token, "GET", "/v1/guardrails/journal"))["data"]
        return self.core.render(request, "guardrails.html", s, blocked=blocked, redacted=redacted)

    async def detail(self, request: Request, s: Session) -> Response:
        rid = quote(request.path_params["response_id"], safe="")
        entry = await self.core.api.call(s.token, "GET", f"/v1/guardrails/quarantine/{rid}")
        return self.core.render(request, "guardrails_detail.html", s, entry=entry)
