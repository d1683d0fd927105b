"""Console sign-in with OpenID Connect (authorization code + PKCE), on when MOE_OIDC_ISSUER is set.

    GET /console/oidc/start     -> 303 to the provider (state, nonce, S256 code challenge)
    GET /console/oidc/callback  <- the provider's redirect: code and state

The state, nonce and code verifier are kept server-side in Redis for ten minutes, under the state, and the
browser holds the state in an HttpOnly cookie (SameSite=Lax: the callback is a top-level navigation from the
provider), so a callback is accepted once, only in the browser that started it. The ID token is verified
(oidc_tokens); the person it names maps to a principal (people.py); the session then holds an admin key minted
for that principal, for the session's lifetime (revoked at sign-out), so every console page goes through the
same API, authorisation and audit as before — and four-eyes sees the person, not a key.

Any refusal (a wrong issuer, audience or nonce, a bad signature, an unknown or replayed state, a person not
provisioned) is the error page with the reason and a 4xx status (502 when the provider cannot be reached or
answers nonsense), never a 500. Every sign-in and every refusal is an audit event.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from redis.asyncio import Redis

from control_plane.admin.key_audit import change_event
from control_plane.console.core import STORE_ERRORS, ConsoleCore
from control_plane.console.oidc_client import OidcClient, Pending
from control_plane.console.oidc_settings import OidcSettings
from control_plane.console.oidc_tokens import Refused
from control_plane.console.people import console_role, person_for
from control_plane.console.sessions import COOKIE
from moe_core.access.principals import Principal, Principals
from moe_core.runtime.bus import Bus

log = logging.getLogger(__name__)
FLOW_COOKIE = "moe_console_oidc"
FLOW_TTL_S = 600
SIGNED_IN = ('<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=/console/overview">'
             '<title>Signed in</title><p>Signed in. <a href="/console/overview">Continue to the console</a>.</p>')


class OidcLogin:
    def __init__(self, core: ConsoleCore, settings: OidcSettings, redis: Redis, namespace: str, bus: Bus) -> None:
        self.core, self.settings, self.redis, self.bus = core, settings, redis, bus
        self.client = OidcClient(settings)
        self.prefix = f"console:{namespace}:oidc"
        core.sso_label = settings.provider_name
        core.router.add_api_route("/oidc/start", self.start, methods=["GET"])
        core.router.add_api_route("/oidc/callback", self.callback, methods=["GET"])

    def _refused(self, request: Request, exc: Refused) -> HTMLResponse:
        response = self.core.render(request, "error.html", None, status=exc.status,
                                    message=f"Sign-in refused: {exc.reason}")
        response.delete_cookie(FLOW_COOKIE, path="/console")
        return response

    async def start(self, request: Request) -> Response:
        problems = self.settings.problems()
        if problems:
            return self._refused(request, Refused(f"OIDC sign-in is not configured: set {', '.join(problems)}", 503))
        try:
            url, pending = await self.client.start()
            name = f"{self.prefix}:{pending.state}"
            await self.redis.hset(name, mapping={"nonce": pending.nonce, "verifier": pending.verifier})
            await self.redis.expire(name, FLOW_TTL_S)
        except Refused as exc:
            return self._refused(request, exc)
        except STORE_ERRORS as exc:
            return self._refused(request, Refused(f"a store the console needs is unavailable ({type(exc).__name__})",
                                                  503))
        response = RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
        response.set_cookie(FLOW_COOKIE, pending.state, httponly=True, samesite="lax", path="/console",
                            secure=self.core.settings.secure_cookie, max_age=FLOW_TTL_S)
        return response

    async def callback(self, request: Request) -> Response:
        try:
            cookie = await self._finish(request)
        except Refused as exc:
            await self._audit("console.sign_in_refused", None, {"reason": exc.reason})
            return self._refused(request, exc)
        except STORE_ERRORS as exc:
            return self._refused(request, Refused(f"a store the console needs is unavailable ({type(exc).__name__})",
                                                  503))
        response = HTMLResponse(SIGNED_IN, headers={"Cache-Control": "no-store"})
        response.set_cookie(COOKIE, cookie, httponly=True, samesite="strict", path="/console",
                            secure=self.core.settings.secure_cookie, max_age=self.core.settings.session_ttl_s)
        response.delete_cookie(FLOW_COOKIE, path="/console")
        return response

    async def _finish(self, request: Request) -> str:
        params = request.query_params
        if params.get("error"):
            raise Refused(f"the identity provider answered {params['error']}"
                          f"{': ' + params['error_description'] if params.get('error_description') else ''}")
        state, code = params.get("state", ""), params.get("code", "")
        if not state or not code:
            raise Refused("the callback has no code or state", 400)
        if state != request.cookies.get(FLOW_COOKIE):
            raise Refused("wrong state: this callback does not belong to a sign-in started in this browser", 400)
        pending = await self._take(state)
        claims = await self.client.finish(code, pending)
        role = console_role(claims, self.settings)  # the provider's groups: before anyone is created or bound
        principal = await person_for(claims, self.settings, Principals(self.core.store().pool))
        expires = datetime.now(UTC) + timedelta(seconds=self.core.settings.session_ttl_s)
        key, token = await self.core.store().create(f"console session: {principal.display_name or principal.id}",
                                                    role, [principal.tenant], expires_at=expires,
                                                    principal_id=principal.id)
        cookie = await self.core.sessions.open(token, key.id, minted=True)
        await self._audit("console.signed_in", principal, {"issuer": claims["iss"], "session_key": key.id,
                                                           "role": role, "expires_at": expires.isoformat()})
        return cookie

    async def _take(self, state: str) -> Pending:
        """The pending sign-in of this state, removed (a callback is accepted once)."""
        name = f"{self.prefix}:{state[:128]}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(name)
            pipe.delete(name)
            found, _ = await pipe.execute()
        if not found:
            raise Refused("unknown or expired state: start the sign-in again", 400)
        text = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                for k, v in found.items()}
        return Pending(state, text["nonce"], text["verifier"])

    async def _audit(self, action: str, principal: Principal | None, details: dict[str, object]) -> None:
        subject = principal.actor if principal else "console:sign-in"
        tenant = principal.tenant if principal else self.settings.default_tenant
        event = change_event(subject, action, subject, tenant, details)
        try:
            await self.bus.publish(event, self.bus.topics.audit)
        except Exception:  # the sign-in happened (or was refused); its record must not be lost silently
            log.exception("audit event %s not published", action)
