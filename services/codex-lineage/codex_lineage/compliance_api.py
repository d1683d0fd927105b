"""GET /v1/compliance/report (JSON, Markdown or HTML), GET /v1/compliance/frameworks (the rules, unevaluated),
POST /v1/compliance/rules/reload (re-read the rule files: a broken file is a 400 naming its line, and the
previous rules stay). The report evaluates the whole fleet and its evidence names every tenant's chains, imports
and requests, and a reload changes the fleet's rules: both are the fleet operator's (role operator; a tenant admin
gets 403 operator_only). The frameworks (the rules, no data) are open to any admin key (codex_lineage.access)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from codex_lineage.api import ApiError
from codex_lineage.compliance import render
from codex_lineage.compliance.rules import RulesError
from codex_lineage.deps import AdminAccess, OperatorAccess, Running
from moe_core.runtime import query_params

FORMATS = ("json", "markdown", "html")
api = APIRouter()


@api.get("/v1/compliance/report")
async def report(request: Request, _: OperatorAccess, parts: Running) -> Response:
    engine = parts.compliance
    fmt = query_params.choice(request, "format", FORMATS, "json")
    framework = request.query_params.get("framework")
    if framework is not None and engine.framework(framework) is None:
        raise ApiError(404, f"no compliance framework {framework!r} (known: "
                       f"{', '.join(s.framework for s in engine.rule_sets)})", "not_found")
    result = await engine.evaluate(parts.sources(), framework)
    if fmt == "markdown":
        return PlainTextResponse(render.markdown(result), media_type="text/markdown; charset=utf-8")
    if fmt == "html":
        return HTMLResponse(render.to_html(result))
    return JSONResponse(result)


@api.get("/v1/compliance/frameworks")
async def frameworks(_: AdminAccess, parts: Running) -> JSONResponse:
    engine = parts.compliance
    return JSONResponse({"object": "list", "rules_error": engine.rules_error or None, "data": [
        {**s.model_dump(mode="json"), "source": s.source, "digest": s.digest} for s in engine.rule_sets]})


@api.post("/v1/compliance/rules/reload")
async def reload(_: OperatorAccess, parts: Running) -> JSONResponse:
    engine = parts.compliance
    try:
        changed = engine.reload(force=True)
    except RulesError as exc:
        raise ApiError(400, f"{exc} (the previous rules stay in force)", "invalid_rules") from None
    return JSONResponse({"reloaded": changed, "frameworks": [s.framework for s in engine.rule_sets]})
