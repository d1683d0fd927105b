"""The MCP server's legacy SSE transport (`GET /mcp/sse`, messages to `POST /mcp/messages/?session_id=`), the
original's endpoint for clients that have not moved to streamable HTTP (`/mcp`). Same low-level server, same
tools, same key check: both paths are under `/mcp`, so `mcp_service.auth.KeyAuth` verifies every request, the
stream and each message alike (a revoked key stops a live session's next call).

A session belongs to the key that opened it: the caller the key check found is handed to the SDK as its
authenticated user, and the SDK answers a message for someone else's session exactly like one for a session
that does not exist (404)."""

from __future__ import annotations

from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.lowlevel import Server
from mcp.server.sse import SseServerTransport
from mcp.server.transport_security import TransportSecuritySettings
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Message, Receive, Scope, Send

SSE_PATH = "/mcp/sse"
MESSAGES_PATH = "/mcp/messages/"


def _bind_caller(scope: Scope) -> None:
    """The caller KeyAuth verified (scope state), as the SDK's session owner: its key id, never the key."""
    caller = scope.get("state", {}).get("caller")
    if caller is not None:
        scope["user"] = AuthenticatedUser(AccessToken(token=caller.id, client_id=caller.id, scopes=[]))


class _SseStream:
    """GET /mcp/sse: one MCP session per open stream, served by the low-level server until the client leaves."""

    def __init__(self, server: Server[Any], transport: SseServerTransport) -> None:
        self.server = server
        self.transport = transport

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        _bind_caller(scope)
        stream = _Ending(send)
        try:
            async with self.transport.connect_sse(scope, receive, stream.send) as (read, write):
                await self.server.run(read, write, self.server.create_initialization_options())
        except ValueError:
            return  # refused by the transport's Host/Origin check, which has already answered (421/403)
        await stream.end()


class _Ending:
    """The stream's messages, passed on; `end` completes a response the event stream left open (it stops
    without its last message when the server shuts down, which the ASGI server reports as an error)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = self.ended = False

    async def send(self, message: Message) -> None:
        self.started = self.started or message["type"] == "http.response.start"
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.ended = True
        await self._send(message)

    async def end(self) -> None:
        if self.started and not self.ended:
            await self.send({"type": "http.response.body", "body": b"", "more_body": False})


class _SseMessages:
    """POST /mcp/messages/?session_id=…: a client message into its open session (202; 404 for no such session)."""

    def __init__(self, transport: SseServerTransport) -> None:
        self.transport = transport

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        _bind_caller(scope)
        await self.transport.handle_post_message(scope, receive, send)


def sse_routes(server: Server[Any], security: TransportSecuritySettings) -> list[BaseRoute]:
    """The two routes of the SSE transport; they go before `/mcp`'s own route."""
    transport = SseServerTransport(MESSAGES_PATH, security_settings=security)
    return [Route(SSE_PATH, endpoint=_SseStream(server, transport), methods=["GET"]),
            Mount(MESSAGES_PATH.rstrip("/"), app=_SseMessages(transport))]
