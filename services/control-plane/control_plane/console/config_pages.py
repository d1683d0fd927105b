"""The Configuration page: what each service last ran with (from the signed record), and the fleet configuration
edited here (issue 54): inference servers, the global model assignment (roles and experts per category) and client
profiles. Every form goes through the admin API (control_plane.fleet_config.api: the policy's decision, four-eyes
where the policy asks, an audit event, in force for the next request without a restart); the page shows who changed
what, the changes waiting for another person's approval, and the audit events on the record. A server's API key is
never shown back: the form leaves it as it is unless a new one is typed."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from control_plane.console.api import ApiError
from control_plane.console.core import ConsoleCore
from control_plane.console.sessions import Session

CHANGES = "/v1/admin/fleet-config/changes"


def _list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def server_value(form: Any) -> dict[str, Any]:
    """The server form as the API's value: an empty API key field keeps the key in force."""
    value: dict[str, Any] = {"url": str(form.get("url") or "").strip(), "api": str(form.get("api") or "openai"),
                             "models": _list(str(form.get("models") or ""))}
    for field, kind in (("timeout_s", float), ("max_retries", int)):
        raw = str(form.get(field) or "").strip()
        if raw:
            try:
                value[field] = kind(raw)
            except ValueError:
                raise ApiError(400, f"{field}: {raw!r} is not a number") from None
    key = str(form.get("api_key") or "")
    if key:
        value["api_key"] = key
    return value


class ConfigPages:
    def __init__(self, core: ConsoleCore) -> None:
        self.core = core
        core.page("/config", self.show)
        core.page("/config/servers", self.server, "POST")
        core.page("/config/assignments", self.assignment, "POST")
        core.page("/config/profiles", self.profile, "POST")
        core.page("/config/changes/{change_id}/{verb}", self.decide, "POST")

    async def show(self, request: Request, s: Session, *, status: int = 200, error: str | None = None) -> Response:
        found = await self.core.api.call(s.token, "GET", "/v1/admin/config")
        fleet = await self.core.api.call(s.token, "GET", "/v1/admin/fleet-config")
        done = request.query_params.get("done", "")
        return self.core.render(request, "config.html", s, status=status, error=error, config=found, fleet=fleet,
                                notice=done or None)

    async def _propose(self, request: Request, s: Session, section: str, name: str, value: Any,
                       reason: str) -> Response:
        try:
            made = await self.core.api.call(s.token, "POST", CHANGES, body={
                "section": section, "name": name, "value": value, "reason": reason})
        except ApiError as exc:
            return await self.show(request, s, status=exc.status, error=exc.message)
        said = (f"{section}/{name}: applied as version {made['version']}" if made["status"] == "applied" else
                f"{section}/{name}: waiting for {made['approvals_required']} approval(s) by another person")
        return RedirectResponse(f"/console/config?done={quote(said)}", status_code=303)

    async def server(self, request: Request, s: Session) -> Response:
        form = await request.form()
        name = str(form.get("name") or "").strip()
        try:
            value = None if str(form.get("action") or "") == "remove" else server_value(form)
        except ApiError as exc:
            return await self.show(request, s, status=exc.status, error=exc.message)
        return await self._propose(request, s, "servers", name, value, str(form.get("reason") or ""))

    async def assignment(self, request: Request, s: Session) -> Response:
        form = await request.form()
        where = str(form.get("where") or "").strip()
        section, _, name = where.partition(":")
        if section not in ("roles", "experts") or not name:
            return await self.show(request, s, status=400, error="choose a role or an expert category "
                                                                 "(roles:<role> or experts:<category>)")
        models = _list(str(form.get("models") or ""))
        value = None if str(form.get("action") or "") == "reset" else models
        return await self._propose(request, s, section, name.strip(), value, str(form.get("reason") or ""))

    async def profile(self, request: Request, s: Session) -> Response:
        form = await request.form()
        name = str(form.get("name") or "").strip()
        value: Any = None
        if str(form.get("action") or "") != "remove":
            try:
                value = json.loads(str(form.get("body") or "{}"))
            except ValueError as exc:
                return await self.show(request, s, status=400, error=f"the profile is not JSON: {exc}")
        return await self._propose(request, s, "profiles", name, value, str(form.get("reason") or ""))

    async def decide(self, request: Request, s: Session) -> Response:
        change_id, verb = request.path_params["change_id"], request.path_params["verb"]
        if verb not in ("approve", "reject"):
            return await self.show(request, s, status=404, error=f"no such decision: {verb}")
        form = await request.form()
        try:
            made = await self.core.api.call(s.token, "POST", f"{CHANGES}/{quote(change_id)}/{verb}",
                                            body={"note": str(form.get("note") or "")})
        except ApiError as exc:
            return await self.show(request, s, status=exc.status, error=exc.message)
        said = f"{made['section']}/{made['name']}: {made['status']}"
        return RedirectResponse(f"/console/config?done={quote(said)}", status_code=303)
