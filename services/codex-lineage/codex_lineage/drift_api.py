"""Data health over HTTP: GET /v1/health/drift (ingest runs with their drift flags, newest first, filtered by
dataset and severity, with the window's summary and each dataset's graph rates), GET /v1/health/drift/datasets,
GET /v1/health/drift/datasets/{dataset} and GET /v1/health/drift/runs/{run_id}. Unknown dataset or run: 404.
Each reads its window in one pass (Runs.scan): what it answers is summed and the newest runs kept as it reads,
never the window held.
Admin keys only; a tenant admin sees only its own tenants' datasets and runs (another tenant's is a 404 like an
unknown one, the lists hold only its own), the fleet operator all (codex_lineage.access)."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from codex_lineage.access import Access
from codex_lineage.api import ApiError
from codex_lineage.deps import AdminAccess, Running
from codex_lineage.drift.flags import SEVERITIES
from codex_lineage.drift.runs import GRAPH, Runs
from moe_core.runtime import query_params

DATASET = re.compile(r"^graph/[A-Za-z0-9._:@-]{1,128}$")


def _dataset_tenant(dataset: str) -> str:
    if not DATASET.match(dataset):
        raise ApiError(400, "dataset must be graph/<tenant> (the tenant's knowledge graph)", "invalid_value")
    return dataset[len(GRAPH):]


api = APIRouter()


async def _known(runs: Runs, access: Access, tenant: str) -> None:
    if not await access.sees_tenant(runs.store.pool, tenant):
        raise ApiError(404, f"no dataset graph/{tenant}", "not_found")


@api.get("/v1/health/drift")
async def history(request: Request, access: AdminAccess, parts: Running) -> JSONResponse:
    runs = parts.runs
    hours = query_params.hours(request, parts.settings.drift_window_h)
    limit = query_params.integer(request, "limit", 50, 1, 500)
    severity = query_params.choice(request, "severity", SEVERITIES, None)
    dataset = request.query_params.get("dataset")
    tenant = _dataset_tenant(dataset) if dataset is not None else None
    if tenant is not None:
        await _known(runs, access, tenant)
    found = await runs.scan(hours, tenant, owns=access.owns, keep=limit,
                            pick=lambda r: severity is None or r["severity"] == severity)
    return JSONResponse({"object": "list", "data": found.newest(), "summary": found.total.summary(hours),
                         "datasets": found.graph_summaries()})


@api.get("/v1/health/drift/datasets")
async def datasets(request: Request, access: AdminAccess, parts: Running) -> JSONResponse:
    hours = query_params.hours(request, parts.settings.drift_window_h)
    found = await parts.runs.scan(hours, owns=access.owns)
    return JSONResponse({"object": "list", "window_hours": hours, "data": [
        {"dataset": name, **graph, **{k: v for k, v in found.datasets[name].summary(hours).items() if k != "runs"}}
        for name, graph in sorted(found.graph_summaries().items())]})


@api.get("/v1/health/drift/datasets/{dataset:path}")
async def dataset(dataset: str, request: Request, access: AdminAccess, parts: Running) -> JSONResponse:
    hours = query_params.hours(request, parts.settings.drift_window_h)
    tenant = _dataset_tenant(dataset)
    await _known(parts.runs, access, tenant)
    found = await parts.runs.scan(hours, tenant, keep=1)
    return JSONResponse({"dataset": dataset, "graph": found.graph_summaries().get(dataset, {}),
                         **found.total.summary(hours), "latest": next(iter(found.newest()), None)})


@api.get("/v1/health/drift/runs/{run_id:path}")
async def run(run_id: str, request: Request, access: AdminAccess, parts: Running) -> JSONResponse:
    hours = query_params.hours(request, query_params.YEAR_H)
    if not run_id.startswith(("ingest:", "import:")) or len(run_id) > 300:
        raise ApiError(404, f"no ingest run {run_id!r}", "not_found")
    found = await parts.runs.scan(hours, owns=access.owns, keep=1, pick=lambda r: r["id"] == run_id,
                                  answer=run_id.partition(":")[2])
    match = next(iter(found.newest()), None)
    if match is None:
        raise ApiError(404, f"no ingest run {run_id!r}", "not_found")
    return JSONResponse(match)
