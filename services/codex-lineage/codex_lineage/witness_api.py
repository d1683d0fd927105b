"""GET /v1/witness/logs: the tenants' logs for the witness to provision (the public-witness-network list format,
logs/v0: codex-lineage's note key and each tenant's origin). The list is public by nature (it holds a public key
and the origins, i.e. the tenant ids); the witness keeps the first key it provisioned for a log, so a later list
cannot replace it."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from codex_lineage.deps import Running
from moe_core.audit.checkpoints import tenants
from moe_core.audit.witness import logs_config

api = APIRouter()


@api.get("/v1/witness/logs", response_class=PlainTextResponse)
async def logs(parts: Running) -> PlainTextResponse:
    anchoring = parts.anchoring
    known = set(await tenants(parts.store)) | set(anchoring.published)
    origins = [anchoring.origin(t) for t in known]
    return PlainTextResponse(logs_config(anchoring.note_key.vkey, origins), media_type="text/plain")
