"""The console calls the control plane's own HTTP API in-process (ASGI, no network hop) with the signed-in admin
key: every page goes through exactly the routes, authorisation, validation and audit events an API client
gets; the console holds no second copy of that logic."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.types import ASGIApp


class ApiError(Exception):
    """A refusal of the API, carrying the message and status from its error envelope."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or f"HTTP {response.status_code}"
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return str(body)[:300]


class InternalApi:
    def __init__(self, app: ASGIApp) -> None:
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console.internal",
                                      timeout=30)

    async def call(self, token: str, method: str, path: str, *, body: Any = None,
                   params: dict[str, Any] | None = None) -> Any:
        """The decoded JSON body of a 2xx answer; raises ApiError with the API's own message otherwise."""
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        response = await self.http.request(method, path, json=body, params=clean,
                                           headers={"Authorization": f"Bearer {token}"})
        if response.status_code >= 400:
            raise ApiError(response.status_code, _message(response))
        return response.json()

    async def aclose(self) -> None:
        await self.http.aclose()
