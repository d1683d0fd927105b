"""Console pages of a tenant's expert templates (issue 28: create, edit, assign model@endpoint): a list of the
signed-in key's tenants' own templates beside the repository's file defaults and the servers' models, a form to
create one and a form to edit or delete it. Every change goes through the admin API (control_plane.templates.api:
checked against the configured servers, the policy's decision, an audit event); the console keeps no copy.

The models are typed one place a line, `<where>: <model@server>, <model@server>, ...`: where is an expert
category (code, math, ...) or planner, judge, thinking; the list is in order of preference."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from control_plane.console.api import ApiError
from control_plane.console.core import ConsoleCore
from control_plane.console.sessions import Session

ROLES = ("planner", "judge", "thinking")


class FormError(ValueError):
    """A line of the models box that is not `<where>: <model>[, <model>...]`."""


def parse_models(text: str) -> dict[str, Any]:
    """The models box as the template's fields: {"experts": {category: [...]}, "planner": [...], ...}."""
    out: dict[str, Any] = {"experts": {}}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where, colon, refs = line.partition(":")
        where = where.strip().removeprefix("experts.")
        models = [r.strip() for r in refs.split(",") if r.strip()]
        if not colon or not where or not models:
            raise FormError(f"line {number}: write '<category or planner/judge/thinking>: model@server, ...' "
                            f"(got {line[:80]!r})")
        target = out if where in ROLES else out["experts"]
        if where in target:
            raise FormError(f"line {number}: {where!r} is given twice")
        target[where] = models
    return out


def format_models(template: dict[str, Any]) -> str:
    """The template's models as the box shows them (the inverse of parse_models)."""
    def refs(entries: list[Any]) -> str:
        return ", ".join(e if isinstance(e, str) else f"{e['model']}@{e['server']}" if e.get("server")
                         else str(e["model"]) for e in entries)

    lines = [f"{category}: {refs(entries)}" for category, entries in sorted(template.get("experts", {}).items())]
    lines += [f"{role}: {refs(template[role])}" for role in ROLES if template.get(role)]
    return "\n".join(lines)


class TemplatePages:
    def __init__(self, core: ConsoleCore) -> None:
        self.core = core
        core.page("/templates", self.index)
        core.page("/templates", self.create, "POST")
        core.page("/templates/{tenant_id}/{name}", self.edit)
        core.page("/templates/{tenant_id}/{name}", self.change, "POST")

    async def index(self, request: Request, s: Session, *, status: int = 200, error: str | None = None,
                    form: dict[str, str] | None = None) -> Response:
        found = await self.core.api.call(s.token, "GET", "/v1/admin/templates")
        key = await self.core.store().verify(s.token)
        tenants = sorted(key.tenant_ids) if key is not None else []
        return self.core.render(request, "templates.html", s, status=status, error=error, found=found,
                                tenants=tenants, form=form or {}, format_models=format_models)

    async def edit(self, request: Request, s: Session, *, status: int = 200, error: str | None = None,
                   models: str | None = None) -> Response:
        tenant, name = request.path_params["tenant_id"], request.path_params["name"]
        one = await self.core.api.call(s.token, "GET", f"/v1/admin/templates/{quote(tenant)}/{quote(name)}")
        servers = (await self.core.api.call(s.token, "GET", "/v1/admin/templates"))["servers"]
        shown = models if models is not None else format_models(one["template"])
        return self.core.render(request, "templates_edit.html", s, status=status, error=error, one=one,
                                servers=servers, models=shown)

    @staticmethod
    def _template(form: Any) -> dict[str, Any]:
        return {"description": str(form.get("description") or "").strip(),
                "ensemble": str(form.get("ensemble") or "") == "true",
                **parse_models(str(form.get("models") or ""))}

    async def create(self, request: Request, s: Session) -> Response:
        form = await request.form()
        kept = {k: str(form.get(k) or "") for k in ("tenant_id", "name", "description", "models")}
        try:
            body = {"tenant_id": kept["tenant_id"].strip(), "name": kept["name"].strip(),
                    "template": self._template(form)}
            made = await self.core.api.call(s.token, "POST", "/v1/admin/templates", body=body)
        except FormError as exc:
            return await self.index(request, s, status=400, error=str(exc), form=kept)
        except ApiError as exc:
            return await self.index(request, s, status=exc.status, error=exc.message, form=kept)
        return RedirectResponse(f"/console/templates?created={quote(made['name'])}", status_code=303)

    async def change(self, request: Request, s: Session) -> Response:
        tenant, name = request.path_params["tenant_id"], request.path_params["name"]
        path = f"/v1/admin/templates/{quote(tenant)}/{quote(name)}"
        form = await request.form()
        if str(form.get("action") or "") == "delete":
            await self.core.api.call(s.token, "DELETE", path)  # a refusal: the error page, with the API's message
            return RedirectResponse("/console/templates", status_code=303)
        try:
            await self.core.api.call(s.token, "PUT", path, body={"template": self._template(form)})
        except FormError as exc:
            return await self.edit(request, s, status=400, error=str(exc), models=str(form.get("models") or ""))
        except ApiError as exc:
            if exc.status == 404:
                raise
            return await self.edit(request, s, status=exc.status, error=exc.message,
                                   models=str(form.get("models") or ""))
        return RedirectResponse("/console/templates", status_code=303)
