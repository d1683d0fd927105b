"""Authentication of the mcp service's HTTP doors: `POST /invoke` and the MCP server at `/mcp` need a key
(`Authorization: Bearer <key>` or `x-api-key`): one of the gateway's API keys (verified against the same
Postgres key store through moe_core.access.auth) or the in-cluster service key (`MOE_MCP_SERVICE_KEY`).

`GET /tools` (the tool contracts, no work done), `/health`, `/ready` and `/metrics` stay open. The
pipeline's tool tasks over Kafka are not HTTP and are unaffected. Refusals: 401 (no, unknown, revoked or
expired key) with `WWW-Authenticate: Bearer`, 503 when the key store cannot be asked. An API key's calls are
counted (`MOE_LIMIT_TOOL_CALLS_PER_MINUTE`, moe_core.access.throttle): past it 429 with Retry-After; the service
key's are not.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from moe_core.access.auth import AuthUnavailable, KeyVerifier, bearer_token
from moe_core.access.throttle import Throttle
from moe_core.runtime.openai_error import OpenAIError

PROTECTED = ("/invoke", "/mcp")


def protected(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PROTECTED)


class KeyAuth:
    """Pure ASGI middleware (streaming responses of /mcp pass through untouched)."""

    def __init__(self, app: ASGIApp, verifier: KeyVerifier, throttle: Throttle | None = None) -> None:
        self.app = app
        self.verifier = verifier
        self.throttle = throttle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not protected(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        token = bearer_token(headers.get("authorization", ""), headers.get("x-api-key", ""))
        try:
            caller = await self.verifier.verify(token)
        except AuthUnavailable as exc:
            await _refuse(scope, send, 503, "auth_unavailable", str(exc), {"retry-after": "5"})
            return
        if caller is None:
            message = ("No API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'" if not token
                       else "Incorrect, revoked or expired API key")
            await _refuse(scope, send, 401, "invalid_api_key", message,
                          {"www-authenticate": 'Bearer realm="moe-mcp"'})
            return
        if self.throttle is not None and caller.role != "service":
            try:
                await self.throttle.spend(caller.id, "tool_calls")
            except OpenAIError as exc:  # 429 past the limit (LimitExceeded), 503 when Redis cannot count it
                headers = {k.lower(): v for k, v in (exc.headers or {}).items()}  # both carry Retry-After
                await _refuse(scope, send, exc.status, exc.code or "limits_unavailable", exc.message, headers)
                return
        scope.setdefault("state", {})["caller"] = caller
        await self.app(scope, receive, send)


JSONRPC_UNAUTHORIZED = -32001  # an implementation-defined server error (JSON-RPC reserves -32000..-32099)


async def _refuse(scope: Scope, send: Send, status: int, code: str, message: str, extra: dict[str, str]) -> None:
    """/invoke's error body; on /mcp (streamable HTTP) a JSON-RPC error, which the MCP SDKs show the user (else only
    "Server returned an error response"). The legacy SSE transport's client gives up on the status alone."""
    if scope["path"].rstrip("/") == "/mcp":
        error = {"code": JSONRPC_UNAUTHORIZED, "message": message, "data": {"code": code}}
        body = json.dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode()
    else:
        body = json.dumps({"ok": False, "tool": None, "error": {"code": code, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               *((k.encode(), v.encode()) for k, v in extra.items())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

