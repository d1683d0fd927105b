"""GET /v1/admin/config: the fleet's live configuration, for the fleet operator (policy/opa/admin.rego, action
config.read; a tenant admin gets 403 operator_only; each read a policy decision and so an audit record):

- `services`: what each service last ran with, as the record says — the versions (moe_core.runtime.run_versions:
  configuration digest, prompt template digests) on the newest message it published in the window, read from
  the audit store codex-lineage keeps; a digest that changed shows here before anyone restarts anything;
- `control_plane`: this process's settings as the digest covers them (secrets `***`), and their digest;
- `templates`: the named expert templates in force (policy/templates.yaml or MOE_NAMED_TEMPLATES) and the
  global models per category (MOE_EXPERT_TEMPLATES), each model as `model@server` with its tier."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from fastapi import APIRouter, Request
from pydantic import BaseModel

from control_plane.policy.gate import PolicyGate
from moe_core.access.keystore import KeyStore
from moe_core.access.request_auth import require_admin
from moe_core.audit.store import AuditStore
from moe_core.llm.inference.config import InferenceConfig, ModelRef
from moe_core.runtime import query_params
from moe_core.runtime.openai_error import OpenAIError
from moe_core.runtime.run_versions import config_digest, config_view

FLEET = "__fleet__"
LATEST = """
SELECT DISTINCT ON (payload::jsonb -> 'versions' ->> 'service')
       payload::jsonb -> 'versions' AS versions, broker_ts, message_type, topic
FROM audit_records
WHERE broker_ts > now() - make_interval(hours => $1) AND payload::jsonb ? 'versions'
  AND payload::jsonb -> 'versions' ->> 'service' IS NOT NULL
ORDER BY payload::jsonb -> 'versions' ->> 'service', broker_ts DESC
"""


def _ref(ref: ModelRef) -> dict[str, Any]:
    return {"model": str(ref), "tier": ref.tier}


def templates_view(config: InferenceConfig) -> dict[str, Any]:
    named = {name: {"description": t.description, "ensemble": t.ensemble,
                    "lists": {where: [_ref(r) for r in refs] for where, refs in t.lists().items()}}
             for name, t in sorted(config.templates.items())}
    return {"named": named, "global": {category: [_ref(r) for r in refs]
                                       for category, refs in sorted(config.experts.items())}}


class ConfigApi:
    def __init__(self, settings: BaseModel, inference: InferenceConfig, keys: Callable[[], KeyStore],
                 store: Callable[[], Awaitable[AuditStore]], gate: PolicyGate) -> None:
        self.settings = settings
        self.inference = inference
        self.keys = keys
        self.store = store
        self.gate = gate
        self.router = APIRouter()
        self.router.add_api_route("/v1/admin/config", self.config, methods=["GET"])

    async def config(self, request: Request) -> dict[str, Any]:
        key = await require_admin(request, self.keys())
        hours = query_params.integer(request, "hours", 24 * 7, 1, 24 * 31)
        await self.gate.decide(key, "moe/admin/decision", "config.read", FLEET, {"tenants": []}, "config")
        return {"object": "fleet.config", "services": await self._services(hours),
                "control_plane": {"config": config_digest(self.settings), "settings": config_view(self.settings)},
                "templates": templates_view(self.inference)}

    async def _services(self, hours: int) -> list[dict[str, Any]]:
        store = await self.store()
        try:
            rows = await store.pool.fetch(LATEST, hours)
        except asyncpg.UndefinedTableError:
            raise OpenAIError(503, "the audit store is not set up yet (codex-lineage creates it)", "server_error",
                              code="audit_store_missing") from None
        out = []
        for row in rows:
            versions = row["versions"] if isinstance(row["versions"], dict) else json.loads(row["versions"])
            out.append({"service": versions.get("service"), "config": versions.get("config"),
                        "prompts": versions.get("prompts") or {}, "last_seen": row["broker_ts"].isoformat(),
                        "message": row["message_type"]})
        return out
