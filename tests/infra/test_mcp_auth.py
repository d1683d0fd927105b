"""The mcp service's HTTP doors need a key: POST /invoke and the MCP server at /mcp accept the gateway's
API keys (the same Postgres key store) and the in-cluster service key; no key, an unknown key or a revoked
key gets 401. GET /tools (contracts only) stays open. The MCP side is driven by the official SDK client
with an Authorization header."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from moe_core.access.keystore import KeyStore
from tests.support.fleet import ServiceProcess
from tests.support.lone_service import lone_service

pytestmark = pytest.mark.infra
SERVICE_KEY = f"svc-{secrets.token_urlsafe(16)}"
CALL: dict[str, Any] = {"tool": "checksum", "args": {"text": "123456789", "algorithm": "crc32"}}


@pytest.fixture(scope="module")
def mcp(infra: dict[str, str]) -> Iterator[ServiceProcess]:
    with lone_service("mcp", infra, "mcpauth", 300, MOE_TOOL_WORKERS="1", MOE_MCP_SERVICE_KEY=SERVICE_KEY) as service:
        yield service


@pytest.fixture
async def keys(infra: dict[str, str]) -> AsyncIterator[tuple[str, str]]:
    """(a live user key, a revoked one) in the gateway's key store."""
    store = await KeyStore.connect(infra["postgres"])
    try:
        _, live = await store.create("mcp-auth-live", "user", ["mcp-auth"])
        revoked_key, revoked = await store.create("mcp-auth-revoked", "user", ["mcp-auth"])
        await store.revoke(revoked_key.id)
        yield live, revoked
    finally:
        await store.close()


async def test_rest_invoke_needs_a_valid_key(mcp: ServiceProcess, keys: tuple[str, str]) -> None:
    live, revoked = keys
    async with httpx.AsyncClient(base_url=mcp.url, timeout=30) as http:
        assert (await http.get("/tools")).status_code == 200  # the contracts: no work done, open
        for headers in ({}, {"authorization": "Bearer moe-nope-guessed"}, {"authorization": f"Bearer {revoked}"},
                        {"authorization": f"Basic {live}"}):
            refused = await http.post("/invoke", json=CALL, headers=headers)
            assert refused.status_code == 401, headers
            assert refused.json()["error"]["code"] == "invalid_api_key"
            assert refused.headers["www-authenticate"].startswith("Bearer")
        for headers in ({"authorization": f"Bearer {live}"}, {"x-api-key": live},
                        {"authorization": f"Bearer {SERVICE_KEY}"}):
            ok = await http.post("/invoke", json=CALL, headers=headers)
            assert ok.status_code == 200 and ok.json()["result"]["hex"] == "cbf43926", headers


def _client(url: str, token: str | None) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return Client(streamable_http_client(url, http_client=create_mcp_http_client(headers=headers)))


async def test_mcp_server_needs_a_valid_key(mcp: ServiceProcess, keys: tuple[str, str]) -> None:
    live, revoked = keys
    async with httpx.AsyncClient(timeout=30) as http:  # the raw answer the SDK client sees
        for headers in ({}, {"authorization": "Bearer moe-nope-guessed"}, {"authorization": f"Bearer {revoked}"}):
            refused = await http.post(f"{mcp.url}/mcp", headers={**headers, "accept": "application/json"},
                                      json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
            assert refused.status_code == 401, headers
    for token in (None, "moe-nope-guessed", revoked):
        with pytest.raises(BaseExceptionGroup) as refused_by_sdk:  # the SDK reports the 401 as an MCPError
            async with _client(f"{mcp.url}/mcp", token) as client:
                await client.list_tools()
        assert refused_by_sdk.value.subgroup(MCPError) is not None, token
    for token in (live, SERVICE_KEY):
        async with _client(f"{mcp.url}/mcp", token) as client:
            assert "checksum" in {t.name for t in (await client.list_tools()).tools}
            crc = await client.call_tool(CALL["tool"], CALL["args"])
            assert not crc.is_error and crc.structured_content is not None
            assert crc.structured_content["hex"] == "cbf43926"
