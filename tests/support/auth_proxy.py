"""A reverse proxy that adds an API key to every request: for clients that cannot send one (the MCP
conformance suite has no header option), as a client configured with a key would send it. Everything else —
method, path, query, body, the other headers, status, response headers and the streamed body — passes
through unchanged. Runs in a daemon thread: ``url, stop = start_auth_proxy(upstream, key)``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from tests.support import uvicorn_thread

HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-authorization", "content-length"}


def create_app(upstream: str, key: str) -> Starlette:
    client = httpx.AsyncClient(base_url=upstream, timeout=httpx.Timeout(60, connect=10))

    async def forward(request: Request) -> StreamingResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}  # Host too (DNS rebinding)
        headers["authorization"] = f"Bearer {key}"
        outgoing = client.build_request(request.method, request.url.path, params=request.query_params,
                                        headers=headers, content=await request.body())
        response = await client.send(outgoing, stream=True)

        async def body() -> AsyncIterator[bytes]:
            async for chunk in response.aiter_raw():
                yield chunk

        passed = {k: v for k, v in response.headers.items() if k.lower() not in HOP}
        return StreamingResponse(body(), status_code=response.status_code, headers=passed,
                                 background=BackgroundTask(response.aclose))

    methods = ["GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS", "HEAD"]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    return Starlette(routes=[Route("/{path:path}", forward, methods=methods)], lifespan=lifespan)


def start_auth_proxy(upstream: str, key: str) -> tuple[str, Callable[[], None]]:
    sock = uvicorn_thread.bind()
    stop = uvicorn_thread.serve(create_app(upstream, key), sock, stop_timeout=10, what="the auth proxy")
    return uvicorn_thread.url("127.0.0.1", sock), stop
