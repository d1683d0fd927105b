"""The mcp service's legacy SSE transport (`GET /mcp/sse`, the original's endpoint for Claude Desktop and other
clients that predate streamable HTTP), driven by the official SDK's SSE client against the service as a real
process: the same tools as `/mcp`, the same key check on the stream and on every message, and a session that
only the key which opened it can post into."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import httpx2  # the MCP SDK's HTTP client
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from moe_core.access.keystore import KeyStore
from tests.support.fleet import ServiceProcess
from tests.support.lone_service import lone_service

pytestmark = pytest.mark.infra
SERVICE_KEY = f"svc-{secrets.token_urlsafe(16)}"
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                         "clientInfo": {"name": "raw", "version": "0"}}}


@pytest.fixture(scope="module")
def mcp(infra: dict[str, str]) -> Iterator[ServiceProcess]:
    with lone_service("mcp", infra, "mcpsse", 300, MOE_TOOL_WORKERS="1", MOE_MCP_SERVICE_KEY=SERVICE_KEY) as service:
        yield service


@pytest.fixture
async def store(infra: dict[str, str]) -> AsyncIterator[KeyStore]:
    keys = await KeyStore.connect(infra["postgres"])
    try:
        yield keys
    finally:
        await keys.close()


async def _user_key(store: KeyStore, name: str) -> tuple[str, str]:
    """(key id, key) of a new user key."""
    key, token = await store.create(name, "user", ["mcp-sse"])
    return key.id, token


async def test_the_sdk_sse_client_lists_and_calls_the_same_tools_as_streamable_http(mcp: ServiceProcess,
                                                                                    store: KeyStore) -> None:
    _, token = await _user_key(store, "mcp-sse-client")
    auth = {"Authorization": f"Bearer {token}"}
    async with Client(sse_client(f"{mcp.url}/mcp/sse", headers=auth)) as client:
        over_sse = {t.name: t.input_schema for t in (await client.list_tools()).tools}
        crc = await client.call_tool("checksum", {"text": "123456789", "algorithm": "crc32"})
        days = await client.call_tool("date_diff", {"start": "2024-02-01", "end": "2024-03-01"})
        broken = await client.call_tool("calculate", {"expression": "1/0"})
        unknown = await client.call_tool("no_such_tool", {})
    streamable = streamable_http_client(f"{mcp.url}/mcp", http_client=create_mcp_http_client(headers=auth))
    async with Client(streamable) as client:
        over_http = {t.name: t.input_schema for t in (await client.list_tools()).tools}
    assert over_sse == over_http and "checksum" in over_sse
    assert not crc.is_error and crc.structured_content is not None and crc.structured_content["hex"] == "cbf43926"
    assert not days.is_error and days.structured_content is not None and days.structured_content["days"] == 29
    assert broken.is_error and broken.structured_content == {
        "error": {"code": "tool_execution_error", "message": broken.structured_content["error"]["message"]}}
    assert "zero" in broken.structured_content["error"]["message"]
    assert unknown.is_error and unknown.structured_content is not None
    assert unknown.structured_content["error"]["code"] == "unknown_tool"


async def test_the_stream_and_its_messages_need_a_valid_key(mcp: ServiceProcess, store: KeyStore) -> None:
    key_id, revoked = await _user_key(store, "mcp-sse-revoked")
    await store.revoke(key_id)
    async with httpx.AsyncClient(base_url=mcp.url, timeout=30) as http:
        for headers in ({}, {"authorization": "Bearer moe-nope-guessed"}, {"authorization": f"Bearer {revoked}"}):
            stream = await http.get("/mcp/sse", headers=headers)
            assert stream.status_code == 401, headers
            assert stream.json()["error"]["code"] == "invalid_api_key"
            message = await http.post(f"/mcp/messages/?session_id={'0' * 32}", headers=headers, json=INITIALIZE)
            assert message.status_code == 401, headers
    with pytest.raises(httpx2.HTTPStatusError) as refused:  # the SDK's SSE client sees the 401 and gives up
        async with Client(sse_client(f"{mcp.url}/mcp/sse", headers={"Authorization": f"Bearer {revoked}"})) as c:
            await c.list_tools()
    assert refused.value.response.status_code == 401


async def _endpoint(lines: AsyncIterator[str]) -> str:
    """The message URI of the SSE transport's first event (`event: endpoint`)."""
    event = ""
    async for line in lines:
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and event == "endpoint":
            return line.split(":", 1)[1].strip()
    raise AssertionError("the stream ended before its endpoint event")


async def test_a_session_takes_messages_only_from_the_key_that_opened_it(mcp: ServiceProcess,
                                                                         store: KeyStore) -> None:
    key_id, owner = await _user_key(store, "mcp-sse-owner")
    _, other = await _user_key(store, "mcp-sse-other")
    async with httpx.AsyncClient(base_url=mcp.url, timeout=30) as http:
        async with http.stream("GET", "/mcp/sse", headers={"authorization": f"Bearer {owner}"}) as stream:
            assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()
            uri = await _endpoint(lines)
            assert uri.startswith("/mcp/messages/?session_id=")
            for intruder in (other, SERVICE_KEY):  # someone else's key: as if the session did not exist
                refused = await http.post(uri, headers={"authorization": f"Bearer {intruder}"}, json=INITIALIZE)
                assert refused.status_code == 404
            accepted = await http.post(uri, headers={"x-api-key": owner}, json=INITIALIZE)
            assert accepted.status_code == 202
            with anyio.fail_after(30):  # the answer comes back on the owner's stream
                answer = await _message(lines)
            assert answer["id"] == 1 and answer["result"]["serverInfo"]["name"] == "moe-precision-tools"
            assert (await http.post(f"/mcp/messages/?session_id={'0' * 32}", headers={"x-api-key": owner},
                                    json=INITIALIZE)).status_code == 404
            assert (await http.post("/mcp/messages/?session_id=not-hex", headers={"x-api-key": owner},
                                    json=INITIALIZE)).status_code == 400
            await store.revoke(key_id)  # a revoked key stops the live session's next message
            with anyio.fail_after(30):
                while (await http.post(uri, headers={"x-api-key": owner}, json=INITIALIZE)).status_code != 401:
                    await anyio.sleep(0.5)


async def _message(lines: AsyncIterator[str]) -> dict[str, Any]:
    async for line in lines:
        if line.startswith("data:"):
            found: dict[str, Any] = json.loads(line.split(":", 1)[1])
            return found
    raise AssertionError("the stream ended before a message")
