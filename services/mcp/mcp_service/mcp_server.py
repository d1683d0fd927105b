"""The MCP front door: the official SDK's low-level server (streamable HTTP at /mcp, the legacy SSE transport at
/mcp/sse: mcp_sse.py) over the registry.
The low-level server is used because each tool already has its own JSON Schema contract; the
decorator API would derive schemas from Python signatures instead."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.transport_security import TransportSecuritySettings
from starlette.routing import BaseRoute

from mcp_service.mcp_sse import sse_routes
from mcp_service.registry import Outcome, Registry
from mcp_service.settings import McpSettings

Hook = Callable[[], Awaitable[None]]
LOCAL_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost"]


def build_server(registry: Registry) -> Server[Any]:
    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[
            types.Tool(name=spec.name, description=spec.description, input_schema=spec.input_schema,
                       _meta={"moe/version": spec.version, "moe/schema_sha256": spec.schema_sha256})
            for spec in await registry.enabled_specs()
        ])

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        outcome = await registry.ainvoke(params.name, params.arguments or {}, via="mcp")
        return call_result(outcome)

    return Server("moe-precision-tools", version="1.0.0",
                  instructions="Exact, deterministic tools: arithmetic, algebra, dates, units, hashes, subnets ...",
                  get_tool_input_schema=lambda name: registry.specs[name].input_schema if name in registry.specs
                  else None,
                  on_list_tools=list_tools, on_call_tool=call_tool)


def call_result(outcome: Outcome) -> types.CallToolResult:
    meta = {"moe/version": outcome.version, "moe/schema_sha256": outcome.schema_sha256,
            "moe/duration_ms": round(outcome.duration_ms, 3)}
    if outcome.ok:
        return types.CallToolResult(content=[types.TextContent(type="text", text=outcome.text)],
                                    structured_content=outcome.result, is_error=False, _meta=meta)
    error = {"code": outcome.code, "message": outcome.message}
    return types.CallToolResult(content=[types.TextContent(type="text", text=f"{outcome.code}: {outcome.message}")],
                                structured_content={"error": error}, is_error=True, _meta=meta)


def security(settings: McpSettings) -> TransportSecuritySettings:
    hosts = [h.strip() for h in settings.mcp_allowed_hosts.split(",") if h.strip()]
    if hosts == ["*"]:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    allowed = LOCAL_HOSTS + hosts
    origins = [f"http://{h}" for h in allowed] + [f"https://{h}" for h in allowed]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=allowed,
                                     allowed_origins=origins)


def mcp_routes(registry: Registry, settings: McpSettings) -> tuple[list[BaseRoute], Hook, Hook]:
    """The /mcp routes (streamable HTTP, SSE) and (start, stop) hooks running the SDK session manager inside the
    app's lifespan."""
    server = build_server(registry)
    guard = security(settings)
    starlette_app = server.streamable_http_app(streamable_http_path="/mcp", stateless_http=True,
                                               json_response=True, transport_security=guard)
    stack = AsyncExitStack()

    async def start() -> None:
        await stack.enter_async_context(server.session_manager.run())

    async def stop() -> None:
        await stack.aclose()

    return [*sse_routes(server, guard), *starlette_app.routes], start, stop
