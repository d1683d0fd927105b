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
    known = set(await tenants(parts.store)) | set(anchoring.published) | set(anchoring.origins)
    by_key: dict[str, list[str]] = {}  # a tenant cut over to a new log has that log's note key (its name)
    for tenant in known:
        by_key.setdefault(anchoring.note_key_of(tenant).vkey, []).append(anchoring.origin(tenant))
    text = "logs/v0\n" + "".join(logs_config(vkey, origins).removeprefix("logs/v0\n")
                                  for vkey, origins in sorted(by_key.items()))
    return PlainTextResponse(text, media_type="text/plain")
