"""The mcp service's HTTP doors need a key: POST /invoke and the MCP server at /mcp accept the gateway's
API keys (the same Postgres key store) and the in-cluster service key; no key, an unknown key or a revoked
key gets 401. GET /tools (contracts only) stays open. The MCP side is driven by the official SDK client
with an Authorization header."""

from __future__ import annotations

import asyncio
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


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    return [leaf for e in group.exceptions
            for leaf in (_leaves(e) if isinstance(e, BaseExceptionGroup) else [e])]


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
        errors = refused_by_sdk.value.subgroup(MCPError)
        assert errors is not None, token
        # the body is a JSON-RPC error, so the SDK shows the fleet's reason (not "Server returned an error response")
        reason = "No API key" if token is None else "Incorrect, revoked or expired API key"
        leaves = [str(e) for e in _leaves(errors)]
        assert any(reason in leaf for leaf in leaves), leaves
    for token in (live, SERVICE_KEY):
        async with _client(f"{mcp.url}/mcp", token) as client:
            assert "checksum" in {t.name for t in (await client.list_tools()).tools}
            crc = await client.call_tool(CALL["tool"], CALL["args"])
            assert not crc.is_error and crc.structured_content is not None
            assert crc.structured_content["hex"] == "cbf43926"


@pytest.fixture(scope="module")
def limited_mcp(infra: dict[str, str]) -> Iterator[ServiceProcess]:
    with lone_service("mcp", infra, "mcplim", 300, MOE_TOOL_WORKERS="1", MOE_MCP_SERVICE_KEY=SERVICE_KEY,
                      MOE_LIMIT_TOOL_CALLS_PER_MINUTE="3") as service:
        yield service


async def test_a_keys_tool_calls_are_limited_per_minute_and_the_service_keys_are_not(
        limited_mcp: ServiceProcess, keys: tuple[str, str], infra: dict[str, str]) -> None:
    """A user key's calls to /invoke and /mcp count against MOE_LIMIT_TOOL_CALLS_PER_MINUTE (the tool workers are
    shared with the planner's preflight); past it 429 with Retry-After. A new user's key limited to 2 requests a
    minute at the gateway made unlimited tool calls here."""
    import time

    live, _ = keys
    store = await KeyStore.connect(infra["postgres"])
    try:
        _, other = await store.create("mcp-auth-other", "user", ["mcp-auth"])
    finally:
        await store.close()
    if time.time() % 60 > 50:  # the counters are per calendar minute: start in a fresh one
        await asyncio.sleep(61 - time.time() % 60)
    async with httpx.AsyncClient(base_url=limited_mcp.url, timeout=30) as http:
        bearer = {"authorization": f"Bearer {live}"}
        assert [(await http.post("/invoke", json=CALL, headers=bearer)).status_code for _ in range(3)] == [200] * 3
        over = await http.post("/invoke", json=CALL, headers=bearer)
        assert over.status_code == 429 and over.json()["error"]["code"] == "rate_limit_exceeded"
        assert 1 <= int(over.headers["retry-after"]) <= 60
        mcp_message = await http.post("/mcp", headers={**bearer, "accept": "application/json"},
                                      json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert mcp_message.status_code == 429  # the MCP door counts too
        ok = await http.post("/invoke", json=CALL, headers={"authorization": f"Bearer {other}"})
        assert ok.status_code == 200  # another key: its own count
        service = [(await http.post("/invoke", json=CALL, headers={"authorization": f"Bearer {SERVICE_KEY}"}))
                   .status_code for _ in range(5)]
        assert service == [200] * 5  # the in-cluster service key is not limited
