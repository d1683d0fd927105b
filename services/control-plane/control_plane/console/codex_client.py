"""The console's client of codex-lineage's HTTP API (the data-health page: /v1/health/drift*), asked server-side
with the signed-in admin key, which codex-lineage checks itself. The control plane never imports codex-lineage's
code (services share only libs/): it asks the service at MOE_CONSOLE_CODEX_LINEAGE_URL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from control_plane.console.api import ApiError


class CodexUnavailable(Exception):
    """codex-lineage did not answer (down, unreachable, timed out) or failed (5xx): the page says so."""


def _message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return response.text[:300] or f"HTTP {response.status_code}"


class CodexCalls:
    """One page's calls, on one connection pool."""

    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self.http, self.base_url = http, base_url

    async def get(self, path: str, **params: Any) -> dict[str, Any] | None:
        """The JSON body of a 2xx answer; None for a 404 (a tenant or dataset the record does not know yet);
        ApiError with codex-lineage's own message for another refusal; CodexUnavailable when it does not answer."""
        clean = {k: v for k, v in params.items() if v not in (None, "")}
        try:
            response = await self.http.get(path, params=clean)
        except httpx.HTTPError as exc:
            raise CodexUnavailable(f"codex-lineage did not answer at {self.base_url} ({type(exc).__name__})") \
                from None
        if response.status_code == 404:
            return None
        if response.status_code >= 500:
            raise CodexUnavailable(f"codex-lineage failed at {self.base_url} (HTTP {response.status_code}: "
                                   f"{_message(response)})")
        if response.status_code >= 400:
            raise ApiError(response.status_code, f"codex-lineage refused: {_message(response)}")
        body: dict[str, Any] = response.json()
        return body


class CodexLineage:
    def __init__(self, base_url: str, timeout_s: float) -> None:
        self.base_url, self.timeout_s = base_url.rstrip("/"), timeout_s

    @asynccontextmanager
    async def calls(self, token: str) -> AsyncIterator[CodexCalls]:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout_s,
                                     headers={"Authorization": f"Bearer {token}"}) as http:
            yield CodexCalls(http, self.base_url)
