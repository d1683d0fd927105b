"""The console's frame: sign-in and sign-out, the session guard every page goes through, CSRF checks on every
POST, templates and the two local assets (htmx, CSS). The pages themselves live beside it (request_pages.py:
Overview, the first).

A request without a valid session is sent to the sign-in page (303, or an HX-Redirect for htmx); a POST
whose CSRF token is missing or wrong is refused with 403 and changes nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from asyncpg import PostgresError
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.types import ASGIApp

from control_plane.console.api import ApiError, InternalApi
from control_plane.console.sessions import COOKIE, LOGIN_COOKIE, Session, Sessions, same
from control_plane.console.settings import ConsoleSettings
from moe_core.access.keystore import ADMIN_ROLES, KeyStore
from moe_core.access.request_auth import look_up
from moe_core.runtime.openai_error import OpenAIError

HERE = Path(__file__).parent
STATIC = {"htmx.min.js": "text/javascript", "console.css": "text/css", "cytoscape.min.js": "text/javascript",
          "lineage.js": "text/javascript", "favicon.svg": "image/svg+xml"}
STORE_ERRORS = (RedisError, PostgresError, OSError)  # shown as a 503 page, never a 500
HOME = "/console/overview"  # the page the console opens on
Page = Callable[[Request, Session], Awaitable[Response]]
NO_STORE = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
            "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                       "frame-ancestors 'none'; form-action 'self'"}


class ConsoleCore:
    def __init__(self, redis: Redis, namespace: str, store: Callable[[], KeyStore], app: ASGIApp,
                 settings: ConsoleSettings | None = None) -> None:
        self.settings = settings or ConsoleSettings()
        self.sessions = Sessions(redis, namespace, self.settings.session_ttl_s)
        self.store = store
        self.api = InternalApi(app)
        self.sso_label = ""  # set when OpenID Connect sign-in is on (console/oidc_login.py)
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.router = APIRouter(prefix="/console", include_in_schema=False)
        r = self.router
        r.add_api_route("/static/{name}", self.static, methods=["GET"])
        r.add_api_route("/login", self.login_form, methods=["GET"])
        r.add_api_route("/login", self.login, methods=["POST"])
        r.add_api_route("/logout", self.guard(self.logout), methods=["POST"])
        r.add_api_route("", self.guard(self.home), methods=["GET"])

    # -- building blocks for the pages -------------------------------------------------------------------
    def page(self, path: str, handler: Page, method: str = "GET") -> None:
        self.router.add_api_route(path, self.guard(handler), methods=[method])

    def guard(self, handler: Page) -> Callable[[Request], Awaitable[Response]]:
        """The session check (and for a POST the CSRF check) in front of a page."""
        async def guarded(request: Request) -> Response:
            try:
                session = await self._session(request)
            except STORE_ERRORS as exc:
                return self.render(request, "error.html", None, status=503, message=_unavailable(exc))
            if session is None:
                return _to_login(request)
            if request.method == "POST":
                form = await request.form()
                sent = form.get("csrf_token") or request.headers.get("x-csrf-token")
                if not same(str(sent) if sent else None, session.csrf):
                    return self.render(request, "error.html", session, status=403,
                                       message="The form's CSRF token is missing or wrong: nothing was changed. "
                                               "Reload the page and try again.")
            try:
                return await handler(request, session)
            except ApiError as exc:
                return self.render(request, "error.html", session, status=exc.status, message=exc.message)
            except STORE_ERRORS as exc:
                return self.render(request, "error.html", session, status=503, message=_unavailable(exc))
        return guarded

    def render(self, request: Request, template: str, session: Session | None, *, status: int = 200,
               **context: Any) -> HTMLResponse:
        context.setdefault("error", None)
        context.setdefault("notice", None)
        return self.templates.TemplateResponse(
            request, template, {"csrf": session.csrf if session else "", "signed_in": session is not None,
                                "section": template.split(".")[0].split("_")[0], **context},
            status_code=status, headers=NO_STORE)

    async def _session(self, request: Request) -> Session | None:
        session = await self.sessions.load(request.cookies.get(COOKIE))
        if session is None:
            return None
        key = await self.store().verify(session.token)
        if key is None or key.role not in ADMIN_ROLES or key.revoked_at is not None or key.expired() or (
                key.principal_disabled_at is not None):
            await self.sessions.close(session.sid)  # revoked, expired, demoted or its person disabled: sign in again
            return None
        return session

    # -- routes ------------------------------------------------------------------------------------------
    async def static(self, name: str) -> Response:
        if name not in STATIC:
            return Response("not found", status_code=404, media_type="text/plain")
        return FileResponse(HERE / "static" / name, media_type=STATIC[name],
                            headers={"Cache-Control": "public, max-age=3600"})

    async def login_form(self, request: Request) -> Response:
        return self._login_form(request)

    def _login_form(self, request: Request, error: str | None = None, status: int = 200) -> Response:
        nonce = secrets.token_urlsafe(32)
        response = self.render(request, "login.html", None, status=status, login_csrf=nonce, error=error,
                               sso=self.sso_label)
        response.set_cookie(LOGIN_COOKIE, nonce, httponly=True, samesite="strict", path="/console",
                            secure=self.settings.secure_cookie, max_age=3600)
        return response

    async def login(self, request: Request) -> Response:
        form = await request.form()
        if not same(str(form.get("csrf_token") or ""), request.cookies.get(LOGIN_COOKIE)):
            return self._login_form(request, "The sign-in form expired (CSRF token missing or wrong): "
                                                  "try again.", 403)
        token = str(form.get("api_key") or "").strip()
        try:
            key = await look_up(request, self.store(), token) if token else None  # throttled like the API's
            if key is None or key.revoked_at is not None or key.expired():
                return self._login_form(request, "This key is not valid.", 401)
            if key.role not in ADMIN_ROLES:
                return self._login_form(request, "The console needs an admin key; this is a user key.", 403)
            cookie = await self.sessions.open(token, key.id)
        except STORE_ERRORS as exc:
            return self._login_form(request, _unavailable(exc), 503)
        except OpenAIError as exc:  # too many unknown keys from this address (429), the key store down (503)
            return self._login_form(request, exc.message, exc.status)
        response = RedirectResponse(HOME, status_code=303)
        response.set_cookie(COOKIE, cookie, httponly=True, samesite="strict", path="/console",
                            secure=self.settings.secure_cookie, max_age=self.settings.session_ttl_s)
        response.delete_cookie(LOGIN_COOKIE, path="/console")
        return response

    async def logout(self, request: Request, session: Session) -> Response:
        if session.minted:  # the OIDC session's own key: through the admin API (announced, audited)
            try:
                await self.api.call(session.token, "POST", f"/v1/admin/keys/{session.key_id}/revoke")
            except ApiError:
                pass  # already revoked; it expires with the session in any case
        await self.sessions.close(session.sid)
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(COOKIE, path="/console")
        return response

    async def home(self, request: Request, session: Session) -> Response:
        return RedirectResponse(HOME, status_code=303)


def _unavailable(exc: Exception) -> str:
    return f"A store the console needs is unavailable ({type(exc).__name__}): try again shortly."


def _to_login(request: Request) -> Response:
    if request.headers.get("hx-request"):
        return Response(status_code=200, headers={"HX-Redirect": "/console/login"})
    return RedirectResponse("/console/login", status_code=303)
