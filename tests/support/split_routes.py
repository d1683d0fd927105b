"""One HTTP client for the edge and the control plane together: requests to a protocol, health or metrics
path go to the gateway, every other path to the control plane (for tests that send the same hostile input to
routes of both)."""

from __future__ import annotations

import httpx

EDGE_PATHS = ("/v1/chat/completions", "/v1/messages", "/v1/responses", "/v1/models", "/v1/admin/metrics", "/alive",
              "/ready", "/metrics")


def is_edge(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in EDGE_PATHS)


class SplitTransport(httpx.HTTPTransport):
    """Sends a request whose path is not the edge's to `control_plane` (a base URL) instead."""

    def __init__(self, control_plane: str) -> None:
        super().__init__()
        self.control_plane = httpx.URL(control_plane)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not is_edge(request.url.path):
            request.url = request.url.copy_with(scheme=self.control_plane.scheme, host=self.control_plane.host,
                                                port=self.control_plane.port)
            request.headers["host"] = self.control_plane.netloc.decode()
        return super().handle_request(request)


class SplitASGITransport(httpx.AsyncBaseTransport):
    """In-process: each request to the edge app or the control-plane app by its path (ASGI, no network)."""

    def __init__(self, edge: httpx.ASGITransport, control_plane: httpx.ASGITransport) -> None:
        self.edge = edge
        self.control_plane = control_plane

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        target = self.edge if is_edge(request.url.path) else self.control_plane
        return await target.handle_async_request(request)
