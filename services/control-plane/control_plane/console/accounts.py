"""Console pages for tenants and keys: list, create, limits and budgets, disable, revoke, rotate, usage.
Every change goes through the admin API (/v1/admin/*) and usage through GET /v1/usage, in-process."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from control_plane.console.api import ApiError
from control_plane.console.core import ConsoleCore
from control_plane.console.sessions import Session

LIMIT_FIELDS = ("requests_per_minute", "tokens_per_minute", "tokens_per_day", "tokens_per_month", "cost_per_day",
                "cost_per_month")


def limits_of(form: FormData) -> dict[str, str]:
    """The limits filled in on a form (a blank field is no limit); the API validates the values."""
    return {name: str(form[name]).strip() for name in LIMIT_FIELDS if str(form.get(name) or "").strip()}


def _field(form: FormData, name: str) -> str:
    return str(form.get(name) or "").strip()


class AccountPages:
    def __init__(self, core: ConsoleCore) -> None:
        self.core = core
        core.page("/keys", self.keys)
        core.page("/tenants", self.create_tenant, "POST")
        core.page("/tenants/{tenant_id}", self.update_tenant, "POST")
        core.page("/keys", self.create_key, "POST")
        core.page("/keys/{key_id}", self.key, "GET")
        core.page("/keys/{key_id}/limits", self.key_limits, "POST")
        core.page("/keys/{key_id}/revoke", self.revoke, "POST")
        core.page("/keys/{key_id}/rotate", self.rotate, "POST")

    async def keys(self, request: Request, s: Session, *, status: int = 200, **context: Any) -> Response:
        api = self.core.api
        tenants = (await api.call(s.token, "GET", "/v1/admin/tenants"))["data"]
        keys = (await api.call(s.token, "GET", "/v1/admin/keys",
                               params={"tenant_id": request.query_params.get("tenant_id")}))["data"]
        usage = await api.call(s.token, "GET", "/v1/usage")  # this month: the whole fleet (operator) or own tenant
        return self.core.render(request, "keys.html", s, status=status, tenants=tenants, keys=keys, usage=usage,
                                limit_fields=LIMIT_FIELDS, **context)

    async def _again(self, request: Request, s: Session, exc: ApiError) -> Response:
        return await self.keys(request, s, status=exc.status, error=exc.message)

    async def create_tenant(self, request: Request, s: Session) -> Response:
        form = await request.form()
        body = {"id": _field(form, "id"), "name": _field(form, "name"), "limits": limits_of(form)}
        try:
            await self.core.api.call(s.token, "POST", "/v1/admin/tenants", body=body)
        except ApiError as exc:
            return await self._again(request, s, exc)
        return RedirectResponse("/console/keys", status_code=303)

    async def update_tenant(self, request: Request, s: Session) -> Response:
        form = await request.form()
        body: dict[str, Any] = {"limits": limits_of(form)}
        if _field(form, "disabled") in ("true", "false"):
            body = {"disabled": _field(form, "disabled") == "true"}
        try:
            await self.core.api.call(s.token, "PATCH", f"/v1/admin/tenants/{request.path_params['tenant_id']}",
                                     body=body)
        except ApiError as exc:
            return await self._again(request, s, exc)
        return RedirectResponse("/console/keys", status_code=303)

    async def create_key(self, request: Request, s: Session) -> Response:
        form = await request.form()
        body: dict[str, Any] = {"name": _field(form, "name"), "role": _field(form, "role") or "user",
                                "tenant_ids": [t for t in form.getlist("tenant_ids") if str(t).strip()],
                                "limits": limits_of(form)}
        if _field(form, "expires_in_days"):
            body["expires_in_days"] = _field(form, "expires_in_days")
        models = [m.strip() for m in _field(form, "allowed_models").split(",") if m.strip()]
        if models:
            body["allowed_models"] = models
        try:
            created = await self.core.api.call(s.token, "POST", "/v1/admin/keys", body=body)
        except ApiError as exc:
            return await self._again(request, s, exc)
        return self.core.render(request, "secret.html", s, key=created, action="created")

    async def key(self, request: Request, s: Session, *, status: int = 200, **context: Any) -> Response:
        key_id = request.path_params["key_id"]
        key = await self.core.api.call(s.token, "GET", f"/v1/admin/keys/{key_id}")
        usage = await self.core.api.call(s.token, "GET", "/v1/usage", params={
            "key_id": key_id, "start": request.query_params.get("start"), "end": request.query_params.get("end")})
        return self.core.render(request, "key_detail.html", s, status=status, key=key, usage=usage,
                                limit_fields=LIMIT_FIELDS, **context)

    async def key_limits(self, request: Request, s: Session) -> Response:
        key_id = request.path_params["key_id"]
        try:
            await self.core.api.call(s.token, "PATCH", f"/v1/admin/keys/{key_id}",
                                     body={"limits": limits_of(await request.form())})
        except ApiError as exc:
            return await self.key(request, s, status=exc.status, error=exc.message)
        return RedirectResponse(f"/console/keys/{key_id}", status_code=303)

    async def revoke(self, request: Request, s: Session) -> Response:
        key_id = request.path_params["key_id"]
        await self.core.api.call(s.token, "POST", f"/v1/admin/keys/{key_id}/revoke")
        return RedirectResponse(f"/console/keys/{key_id}", status_code=303)

    async def rotate(self, request: Request, s: Session) -> Response:
        rotated = await self.core.api.call(s.token, "POST", f"/v1/admin/keys/{request.path_params['key_id']}/rotate")
        return self.core.render(request, "secret.html", s, key=rotated, action="rotated")
