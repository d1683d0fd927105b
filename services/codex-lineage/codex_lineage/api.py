"""HTTP API of codex-lineage: POST /api/v1/lineage (the endpoint Marquez offers, so any OpenLineage producer
can send here), GET /api/v1/lineage?fact_id=… / ?cache_key=… (the requests whose lineage used that knowledge-graph
fact or semantic-cache entry) and the JSON Schemas of the fleet's facets. GET /api/v1/lineage?response_id=… is
deprecated: a request's lineage is read at the control plane's GET /v1/lineage/{id}; until it goes, this path answers
the same body (moe_core.audit.request_lineage) with a Deprecation header and a Link to its successor.

Writes and reads need an admin key of the fleet (the gateway's key table, `Authorization: Bearer <key>`,
which is what openlineage-python's HttpTransport sends with auth type api_key). A tenant admin posts events only
for its own tenants (the event's `moe_tenant` facet names one of them, and its request is not another tenant's:
else 403) and reads only its tenants' requests (another's is a 404 like an unknown one; the fact and cache-entry
lists hold only its tenants' runs); the fleet operator reads all (codex_lineage.access)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from codex_lineage.access import NO_TENANT, REQUEST_TENANTS, Access
from codex_lineage.deps import AdminAccess, Running
from codex_lineage.facets import facet_schema
from moe_core.audit.request_lineage import request_lineage
from moe_core.audit.store import AuditStore
from moe_core.policy.classes import classify_request
from moe_core.runtime.openai_error import OpenAIError


class ApiError(OpenAIError):
    """An error of codex-lineage's API in the fleet's one envelope (moe_core.runtime.openai_error: message, type, param,
    code), as the control plane and the edge answer."""

    def __init__(self, status: int, message: str, code: str, param: str | None = None) -> None:
        kind = "permission_error" if status == 403 else "server_error" if status >= 500 else "invalid_request_error"
        super().__init__(status, message, kind, code, param)


def check_event(event: Any) -> dict[str, Any]:
    """The parts of an OpenLineage RunEvent this store relies on; a clear reason for anything else."""
    if not isinstance(event, dict):
        raise ApiError(400, "the body must be one OpenLineage RunEvent (a JSON object)", "invalid_event")
    run, job = event.get("run"), event.get("job")
    if not isinstance(run, dict) or not isinstance(job, dict):
        raise ApiError(400, "a RunEvent needs 'run' and 'job' objects", "invalid_event")
    try:
        uuid.UUID(str(run.get("runId")))
    except ValueError:
        raise ApiError(400, "run.runId must be a UUID", "invalid_event") from None
    if not job.get("namespace") or not job.get("name"):
        raise ApiError(400, "job.namespace and job.name are required", "invalid_event")
    if not isinstance(event.get("producer"), str) or not event["producer"]:
        raise ApiError(400, "producer (a URI) is required", "invalid_event")
    try:
        datetime.fromisoformat(str(event.get("eventTime")).replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "eventTime must be an ISO 8601 date-time", "invalid_event") from None
    if event.get("eventType") not in (None, "START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"):
        raise ApiError(400, f"unknown eventType {event.get('eventType')!r}", "invalid_event")
    return event


def _request_of(event: dict[str, Any]) -> tuple[str | None, str | None]:
    tenant = ((event.get("run") or {}).get("facets") or {}).get("moe_tenant") or {}
    return tenant.get("responseId"), tenant.get("tenantId")


USED_BY = """
SELECT tenant_id, response_id, job_name, run_id, min(event_time) AS at FROM audit_log
WHERE kind = 'lineage' AND response_id IS NOT NULL AND (body::jsonb -> 'inputs') @> $1::jsonb
GROUP BY tenant_id, response_id, job_name, run_id ORDER BY min(event_time), response_id LIMIT 1000
"""


async def used_by(store: AuditStore, asked: dict[str, str]) -> list[dict[str, Any]]:
    """The stage runs whose lineage names the fact or cache entry as an input (at most 1000, oldest first)."""
    facet: dict[str, Any]
    if "fact_id" in asked:
        facet = {"moe_graph_facts": {"factIds": [asked["fact_id"]]}}
    else:
        facet = {"moe_cache_entry": {"cacheKey": asked["cache_key"]}}
    rows = await store.pool.fetch(USED_BY, json.dumps([{"inputFacets": facet}]))  # (index audit_log_lineage_inputs)
    return [{"tenant_id": r["tenant_id"], "response_id": r["response_id"], "job": r["job_name"],
             "run_id": r["run_id"], "at": r["at"].isoformat()} for r in rows]


async def _writable(store: AuditStore, access: Access, response_id: str) -> bool:
    """A tenant admin's event may join a request that is not recorded yet or is one of its tenants'."""
    found = {r["tenant_id"] for r in await store.pool.fetch(REQUEST_TENANTS, response_id)} - {NO_TENANT}
    return found <= set(access.tenants)


api = APIRouter()


@api.post("/api/v1/lineage", status_code=201)
async def receive(request: Request, access: AdminAccess, parts: Running) -> JSONResponse:
    store, max_bytes = parts.store, parts.settings.max_event_bytes
    body = await request.body()
    if len(body) > max_bytes:
        raise ApiError(413, f"the event is larger than {max_bytes} bytes", "too_large")
    try:
        event = check_event(json.loads(body))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "the body is not valid JSON", "invalid_json") from None
    rid, tenant = _request_of(event)
    if not access.fleet and (tenant is None or not access.owns(tenant) or (
            rid is not None and not await _writable(store, access, rid))):
        raise ApiError(403, "a tenant admin posts lineage only for its own tenants' requests (run.facets."
                            "moe_tenant.tenantId one of the key's tenants)", "tenant_forbidden")
    added = await store.add_events([event], response_id=rid, tenant_id=tenant, source_ts=None, origin="api")
    return JSONResponse({"stored": added}, status_code=201)


@api.get("/api/v1/lineage")
async def events(request: Request, access: AdminAccess, parts: Running) -> JSONResponse:
    store = parts.store
    asked = {k: v for k in ("response_id", "fact_id", "cache_key") if (v := request.query_params.get(k))}
    if len(asked) != 1:
        raise ApiError(400, "give one of response_id, fact_id (a knowledge-graph fact) or cache_key (a "
                            "semantic-cache entry)", "invalid_value")
    if "response_id" not in asked:
        return JSONResponse({"object": "list", "data": access.visible(await used_by(store, asked), "tenant_id")})
    response_id = asked["response_id"]
    if not await access.sees_request(store.pool, response_id):
        return deprecated({"events": []}, response_id)  # what an unknown request answers
    book = parts.classes.current()
    return deprecated(await request_lineage(store, response_id, lambda t, e: classify_request(book, t, e)),
                      response_id)


def successor(response_id: str) -> dict[str, str]:
    """The headers of a request's lineage on a deprecated path: RFC 9745's Deprecation, RFC 8288's Link to the
    control plane's GET /v1/lineage/{id}."""
    return {"Deprecation": "true", "Link": f'</v1/lineage/{response_id}>; rel="successor-version"; '
                                           'title="the control plane"'}


def deprecated(body: dict[str, Any], response_id: str) -> JSONResponse:
    return JSONResponse(body, headers=successor(response_id))


@api.get("/api/v1/facets/{name}.json", include_in_schema=False)
async def schema(name: str) -> JSONResponse:
    found = facet_schema(name)
    if found is None:
        raise ApiError(404, f"no facet {name}", "not_found")
    return JSONResponse(found)
