"""POST /v1/guardrails/simulations: a candidate guardrail rule file tried on the last days of recorded traffic
before anyone puts it in force (moe_core.llm.guardrails.simulate). No model is called: the texts are read from
the signed record codex-lineage keeps. The answer lists, per tenant, how many recorded requests were tried and
whose decision would change (allow, redact, block; by which rules), never their text. Each simulation is an audit
record on every tenant it read (actor, the candidate's digest, the window, the counts), and is kept (its `id`):
a simulated candidate can be proposed for application, which a second person approves
(control_plane.policy.proposals_api).

An admin key simulates its own tenants' traffic; the fleet operator any tenant's (`tenant_id`), else every tenant
that either rule file names (a tenant no rules name has nothing to change)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from control_plane.admin.key_audit import change_event
from control_plane.policy.guardrail_changes import GuardrailChanges
from moe_core.access.keystore import ApiKey, KeyStore
from moe_core.access.request_auth import require_admin
from moe_core.audit.store import AuditStore
from moe_core.llm.guardrails import GuardrailBook, GuardrailError, RuleFile, parse
from moe_core.llm.guardrails.simulate import Simulation, from_record, simulate
from moe_core.runtime.bus import Bus
from moe_core.runtime.openai_error import OpenAIError, parse_json_body
from moe_core.runtime.settings import FleetSettings

MAX_ROWS = 20_000  # recorded messages read for one simulation (the newest first)
RECORDED = """
SELECT response_id, tenant_id, message_type, payload FROM (
    SELECT response_id, tenant_id, message_type, payload, broker_ts FROM audit_records
    WHERE broker_ts > now() - make_interval(secs => $1) AND tenant_id = ANY($2::text[])
      AND message_type IN ('ChatRequest', 'Draft', 'Answer')
    ORDER BY broker_ts DESC LIMIT $3) newest
ORDER BY broker_ts
"""


class SimulationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: str = Field(min_length=1, max_length=256_000, description="The candidate rule file (YAML, as in force)")
    days: float = Field(default=7, gt=0, le=90, description="How far back the recorded traffic is read")
    tenant_id: str | None = Field(default=None, min_length=1, max_length=128)
    limit: int = Field(default=100, ge=1, le=1000, description="How many changed requests are listed")


class SimulationApi:
    def __init__(self, settings: FleetSettings, bus: Bus, keys: Callable[[], KeyStore],
                 store: Callable[[], Awaitable[AuditStore]]) -> None:
        self.settings = settings
        self.bus = bus
        self.keys = keys
        self.store = store
        self.router = APIRouter()
        self.router.add_api_route("/v1/guardrails/simulations", self.run, methods=["POST"])

    async def run(self, request: Request) -> dict[str, Any]:
        key = await require_admin(request, self.keys())
        body = parse_json_body(await request.body(), SimulationBody)
        try:
            candidate = parse(body.rules, "the candidate rules")
        except GuardrailError as exc:
            raise OpenAIError(400, str(exc), param="rules", code="invalid_value") from None
        book = GuardrailBook.from_settings(self.settings)
        tenants = _tenants(key, body.tenant_id, book.rules, candidate)
        rows = await self._recorded(tenants, body.days)
        result = await asyncio.to_thread(simulate, from_record(rows), book.rules, candidate, body.rules,
                                         book.timeout_s)
        sim_id = await GuardrailChanges(self.keys().pool, self.settings.topic_namespace).add_simulation(
            candidate=result.candidate, rules=body.rules, in_force=book.version, days=body.days, tenants=tenants,
            summary={**{t: dict.fromkeys(("requests", "changed", "to_block", "to_redact", "to_pass"), 0)
                        for t in tenants}, **result.summary()},  # a tenant read without traffic: zeros
            actor_key=key.id, actor_principal=key.principal)
        await self._record(key, result, body.days, book.version, sim_id)
        return {"id": sim_id, **result.listed(body.limit), "rules_in_force": book.version, "days": body.days}

    async def _recorded(self, tenants: list[str], days: float) -> list[tuple[str, str, str, dict[str, Any]]]:
        if not tenants:
            return []
        store = await self.store()
        try:
            rows = await store.pool.fetch(RECORDED, days * 86400, tenants, MAX_ROWS)
        except asyncpg.UndefinedTableError:
            raise OpenAIError(503, "the audit store is not set up yet (codex-lineage creates it)", "server_error",
                              code="audit_store_missing") from None
        return [(r["response_id"], r["tenant_id"], r["message_type"], _payload(r["payload"])) for r in rows]

    async def _record(self, key: ApiKey, result: Simulation, days: float, in_force: str, sim_id: str) -> None:
        """One audit event per tenant whose traffic was read: who simulated what, over which window."""
        for tenant, counts in result.summary().items():
            await self.bus.publish(change_event(
                f"key:{key.id}", "guardrails.simulated", f"guardrails:{result.candidate}", tenant,
                {"simulation_id": sim_id, "candidate": result.candidate, "rules_in_force": in_force, "days": days,
                 **counts}),
                self.bus.topics.audit)


def _tenants(key: ApiKey, wanted: str | None, current: RuleFile, candidate: RuleFile) -> list[str]:
    named = sorted({*current.tenants, *candidate.tenants})
    if wanted is not None:
        if key.role != "operator" and wanted not in key.tenant_ids:
            raise OpenAIError(404, f"No tenant '{wanted}'", param="tenant_id", code="not_found")
        return [wanted]
    return named if key.role == "operator" else [t for t in named if t in key.tenant_ids]


def _payload(raw: Any) -> dict[str, Any]:
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
