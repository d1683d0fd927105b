"""The REST front door: GET /tools (the contracts; open, it does no work) and POST /invoke {tool, args}
(authenticated: a gateway API key or the service key, mcp_service.auth). Arguments holding a lone UTF-16
surrogate (not Unicode text, moe_core.llm.unicode_text) are a 400 `invalid_text` naming where, before any tool
sees them; the MCP door's JSON parser (the SDK's, pydantic) refuses them itself (-32700 Parse error)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from mcp_service.registry import Registry
from moe_core.llm.unicode_text import find_lone_surrogate

STATUS = {"unknown_tool": 404, "wrong_arguments": 422, "input_schema_invalid": 422, "tool_execution_error": 422,
          "result_too_large": 422, "timeout": 504, "tool_disabled": 503}


class InvokeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tool: str = Field(min_length=1, max_length=100)
    args: dict[str, Any] = Field(default_factory=dict)

    @field_validator("args")
    @classmethod
    def _unicode(cls, args: dict[str, Any]) -> dict[str, Any]:
        try:
            problem = find_lone_surrogate(args, "args")
        except RecursionError:
            problem = "args: nested too deeply"
        if problem is not None:
            raise PydanticCustomError("invalid_text", problem)
        return args


def error_body(code: str, message: str, tool: str | None = None) -> dict[str, Any]:
    return {"ok": False, "tool": tool, "error": {"code": code, "message": message}}


def add_health_route(app: FastAPI, registry: Registry, tools_running: Callable[[], bool]) -> None:
    """`GET /health` as the seed's MCP server answered it (`curl :8003/health`): a status and the tools served.
    Open like `/tools`; 503 `starting` until the tool workers run (the same condition `/ready` checks), so a
    seed script that polls it waits for a server that can answer. Kafka and Redis stay `/ready`'s business."""

    @app.get("/health")
    async def health() -> JSONResponse:
        names = [spec.name for spec in await registry.enabled_specs()]
        running = tools_running()
        body = {"status": "ok" if running else "starting", "service": "mcp", "tools": names, "count": len(names)}
        return JSONResponse(body, status_code=200 if running else 503)


def add_rest_routes(app: FastAPI, registry: Registry) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if errors and errors[0]["type"] == "invalid_text":  # the message names the path (args.x.y)
            return JSONResponse(error_body("invalid_text", errors[0]["msg"]), status_code=400)
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:5])
        return JSONResponse(error_body("invalid_request", f"the request body is not {{tool, args}}: {problems}"),
                            status_code=400)

    @app.get("/tools")
    async def tools() -> dict[str, Any]:
        return {"tools": [spec.contract() for spec in await registry.enabled_specs()]}

    @app.post("/invoke")
    async def invoke(body: InvokeRequest) -> JSONResponse:
        outcome = await registry.ainvoke(body.tool, body.args, via="rest")
        status = 200 if outcome.ok else STATUS.get(outcome.code or "", 500)
        return JSONResponse(outcome.to_dict(), status_code=status)
