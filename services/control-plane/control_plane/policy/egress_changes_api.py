"""A candidate egress policy simulated on recorded egress decisions, then put in force by two people (issue 50):

    POST /v1/egress/simulations                 {"module", "days", "tenant_id", "limit"}: the decisions it would change
    GET  /v1/egress/changes[?status=&limit=]    simulated, pending, applied, rejected or all (default)
    GET  /v1/egress/changes/{id}
    POST /v1/egress/changes/{id}/propose        {"note"}: propose a simulated candidate
    POST /v1/egress/changes/{id}/approve        {"note"}: a second person approves; it is pushed to OPA
    POST /v1/egress/changes/{id}/reject         {"note"}

The candidate is the module of package moe.egress (policy/opa/egress.rego) as a whole. Simulating applies nothing
(control_plane.policy.egress_simulation: `opa eval` over the recorded inputs). Who may propose, approve or reject is
OPA's decision (policy/opa/policy_changes.rego): the fleet operator; the approver is a person and not the proposer.
An approval, only while the policy in force and the reviewed egress.rego are the ones simulated against (else 409
`policy_changed`, `reviewed_file_changed`), commits the change as the one in force, then puts it in force at OPA:
under the signed bundle the control plane serves (control_plane.policy.bundle_server), the bundle's new revision,
waited for until OPA names it; else the egress module replaced through OPA's authenticated API (`PUT
/v1/policies/<id>`, MOE_OPA_TOKEN). Every egress record from then on names the new policy version. The control plane
keeps it there (control_plane.policy.egress_reconcile). Simulation, proposal, approval, application and rejection are
audit events, on the chain of each tenant whose recorded decisions were read.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from control_plane.admin.key_audit import change_event
from control_plane.policy.apply_lock import ApplyBusy
from control_plane.policy.bundle_server import PolicyBundles
from control_plane.policy.egress_changes import (
    APPROVE,
    DECIDE,
    OUT_OF_FORCE,
    PROPOSE,
    PUSHED,
    EgressChanges,
)
from control_plane.policy.egress_reviewed import reviewed_file
from control_plane.policy.egress_simulation import EvalError, Recorded, egress_module, recorded_decisions, simulate
from control_plane.policy.gate import PolicyGate
from control_plane.policy.settings import PolicySettings
from moe_core.access.keystore import ApiKey, KeyStore
from moe_core.access.request_auth import require_admin
from moe_core.audit.store import AuditStore
from moe_core.policy import PolicyClient, PolicyUnavailable
from moe_core.runtime import query_params
from moe_core.runtime.bus import Bus
from moe_core.runtime.openai_error import OpenAIError, parse_json_body

log = logging.getLogger(__name__)
POLICY = "moe/policy_changes/decision"
MAX_RECORDS = 20_000  # egress records read for one simulation (the newest first)
RECORDED = """
SELECT response_id, tenant_id, payload FROM audit_records
WHERE broker_ts > now() - make_interval(secs => $1) AND ($2::text IS NULL OR tenant_id = $2)
  AND message_type = 'AuditEvent' AND payload::jsonb ->> 'action' IN ('egress.decided', 'egress.refused')
ORDER BY broker_ts DESC LIMIT $3
"""


class SimulationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    module: str = Field(min_length=1, max_length=256_000, description="The candidate module (package moe.egress)")
    days: float = Field(default=7, gt=0, le=90, description="How far back the recorded decisions are read")
    tenant_id: str | None = Field(default=None, min_length=1, max_length=128)
    limit: int = Field(default=100, ge=1, le=1000, description="How many changed decisions are listed")


class NoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=1000)


class EgressChangesApi:
    def __init__(self, settings: PolicySettings, bus: Bus, keys: Callable[[], KeyStore],
                 store: Callable[[], Awaitable[AuditStore]], opa: PolicyClient, gate: PolicyGate,
                 bundles: PolicyBundles | None = None) -> None:
        """bundles: OPA's signed policy bundle when the control plane serves one (an approval is then a new
        revision OPA loads, not a module put with OPA's API)."""
        self.settings, self.bus, self.keys, self.audit, self.opa, self.gate = settings, bus, keys, store, opa, gate
        self.bundles = bundles
        self.router = APIRouter()
        r = self.router
        r.add_api_route("/v1/egress/simulations", self.simulate, methods=["POST"])
        r.add_api_route("/v1/egress/changes", self.listed, methods=["GET"])
        r.add_api_route("/v1/egress/changes/{change_id}", self.get, methods=["GET"])
        for verb in ("propose", "approve", "reject"):  # approve: committed, then pushed (after the commit)
            r.add_api_route(f"/v1/egress/changes/{{change_id}}/{verb}", getattr(self, verb), methods=["POST"])

    def changes(self) -> EgressChanges:
        return EgressChanges(self.keys().pool, self.bus.settings.topic_namespace)

    async def _operator(self, request: Request) -> ApiKey:
        key = await require_admin(request, self.keys())
        if key.role != "operator":
            raise OpenAIError(403, "the egress policy is the fleet's: only the fleet operator's key simulates or "
                              "changes it", "permission_error", code="insufficient_role")
        return key

    async def simulate(self, request: Request) -> dict[str, Any]:
        key = await self._operator(request)
        body = parse_json_body(await request.body(), SimulationBody)
        if not self.settings.opa_binary:
            raise OpenAIError(503, "no opa binary to simulate with (MOE_OPA_BINARY)", "server_error",
                              code="simulator_unavailable")
        in_force, version = await self._in_force()
        reviewed = await asyncio.to_thread(reviewed_file, self.settings.policy_dir())
        recorded = await self._recorded(body.tenant_id, body.days)
        try:
            result = await simulate(self.settings.opa_binary, in_force, body.module, recorded)
        except EvalError as exc:
            raise OpenAIError(400, f"the candidate egress policy was not accepted: {exc}", param="module") from None
        summary = {**result.counts(), "tenants": result.per_tenant(),
                   "read": sorted({r.tenant_id for r in recorded})}
        change_id = await self.changes().add_simulation(
            candidate=result.candidate, module=body.module, in_force=version, days=body.days, summary=summary,
            key_id=key.id, principal=key.principal, reviewed_file=reviewed.digest if reviewed else None)
        await self._audit(key, "egress_policy.simulated", change_id, summary, {
            "candidate": result.candidate, "policy_in_force": version, "days": body.days, **result.counts(),
            "reviewed_file": reviewed.digest if reviewed else None})
        return {"object": "egress_policy.simulation", "id": change_id, "candidate": result.candidate,
                "policy_in_force": version, "reviewed_file": reviewed.digest if reviewed else None,
                "days": body.days, "counts": result.counts(),
                "tenants": result.per_tenant(), "changed": result.changed[:body.limit],
                "not_redecided": result.not_redecided[:body.limit]}

    async def _in_force(self) -> tuple[dict[str, str], str]:
        try:
            return await self.opa.modules(), (await self.opa.version()).digest
        except PolicyUnavailable as exc:
            raise OpenAIError(503, str(exc), "server_error", code="policy_unavailable") from None

    async def _recorded(self, tenant: str | None, days: float) -> list[Recorded]:
        store = await self.audit()
        try:
            rows = await store.pool.fetch(RECORDED, days * 86400, tenant, MAX_RECORDS)
        except asyncpg.UndefinedTableError:
            raise OpenAIError(503, "the audit store is not set up yet (codex-lineage creates it)", "server_error",
                              code="audit_store_missing") from None
        out: list[Recorded] = []
        for row in reversed(rows):
            payload = json.loads(row["payload"]) if isinstance(row["payload"], str) else row["payload"]
            out += recorded_decisions(row["response_id"], row["tenant_id"], payload.get("details") or {})
        return out

    async def listed(self, request: Request) -> dict[str, Any]:
        await self._operator(request)
        status = query_params.choice(request, "status", ("simulated", "pending", "applied", "rejected",
                                                             "superseded", "all"), "all")
        found = await self.changes().listed(None if status == "all" else status,
                                          query_params.integer(request, "limit", 50, 1, 500))
        return {"object": "list", "data": found}

    async def get(self, change_id: str, request: Request) -> dict[str, Any]:
        await self._operator(request)
        found = await self.changes().get(change_id)
        if found is None:
            raise OpenAIError(404, f"No egress policy change '{change_id}'", param="change_id", code="not_found")
        return found

    async def propose(self, change_id: str, request: Request) -> dict[str, Any]:
        return await self._decide(change_id, request, "propose")

    async def reject(self, change_id: str, request: Request) -> dict[str, Any]:
        return await self._decide(change_id, request, "reject")

    async def _decide(self, change_id: str, request: Request, verb: str) -> dict[str, Any]:
        key = await self._operator(request)
        body = parse_json_body(await request.body() or b"{}", NoteBody)
        async with self.changes().locked(change_id) as (conn, item):
            item = await self._allowed(key, change_id, item, verb)
            details: dict[str, Any] = {"note": body.note, "by_principal": key.principal,
                                       "policy_in_force": item["policy_in_force"]}
            if verb == "propose":
                await self._same_policy(item["policy_in_force"])
                await conn.execute(PROPOSE, change_id, key.id, key.principal, body.note)
            else:
                await conn.execute(DECIDE, change_id, "rejected", key.id, key.principal, body.note, None)
        details["proposer_principal"] = item["proposer_principal"] or key.principal
        await self._audit(key, "egress_policy.proposed" if verb == "propose" else "egress_policy.rejected",
                          change_id, item["summary"], details)
        return await self.get(change_id, request)

    async def _allowed(self, key: ApiKey, change_id: str, item: dict[str, Any] | None, verb: str) -> dict[str, Any]:
        """The change, once OPA allowed `key` the transition and the change is in the state it starts from."""
        if item is None:
            raise OpenAIError(404, f"No egress policy change '{change_id}'", param="change_id", code="not_found")
        await self.gate.decide(key, POLICY, f"egress_policy.{verb}", key.tenant_ids[0] if key.tenant_ids else "",
                               {"proposer": item["proposer_principal"] or "", "status": item["status"]},
                               f"egress-policy-change:{change_id}")
        wanted = "simulated" if verb == "propose" else "pending"
        if item["status"] != wanted:
            raise OpenAIError(409, f"the change is {item['status']}, not {wanted}", code="already_decided")
        return item

    async def approve(self, change_id: str, request: Request) -> dict[str, Any]:
        """The second person's approval: committed first (the change is the one in force), then pushed to OPA. A
        push that fails leaves it approved and in force in the table: the reconcile puts it in force at OPA."""
        key = await self._operator(request)
        body = parse_json_body(await request.body() or b"{}", NoteBody)
        changes = self.changes()
        async with self._applying(changes):
            item, details = await self._commit_approval(changes, key, change_id, body.note)
            try:
                details["policy_version"] = await self._push(changes, change_id, item["module"])
            except OpenAIError as exc:
                await self._audit(key, "egress_policy.approved", change_id, item["summary"], details)
                raise OpenAIError(503, f"the change is approved and in force in the record, but the policy engine "
                                  f"did not take it yet ({exc.message}): the control plane puts it in force within "
                                  "MOE_EGRESS_RECONCILE_S", "server_error", code="policy_not_pushed") from None
        for action in ("egress_policy.approved", "egress_policy.applied"):
            await self._audit(key, action, change_id, item["summary"], details)
        return await self.get(change_id, request)

    @asynccontextmanager
    async def _applying(self, changes: EgressChanges) -> AsyncIterator[None]:
        """The fleet's apply lock for this approval, or 503 apply_busy (nothing recorded) naming who holds it."""
        try:
            async with changes.applying(self.settings.egress_apply_wait_s):
                yield
        except ApplyBusy as busy:
            log.warning("an egress policy approval waited %.0f s for the apply lock: %s",
                        self.settings.egress_apply_wait_s, busy)
            raise OpenAIError(503, f"another push of this fleet's egress policy has held it for more than "
                              f"{self.settings.egress_apply_wait_s:.0f} s (MOE_EGRESS_APPLY_WAIT_S): {busy}; nothing "
                              "was approved, try again", "server_error", code="apply_busy") from None

    async def _commit_approval(self, changes: EgressChanges, key: ApiKey, change_id: str,
                               note: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The approval's transaction: allowed, still simulated against what is in force (OPA's policies and the
        reviewed file), marked as the change in force. Returns once it committed (a failed commit: 503)."""
        try:
            async with changes.locked(change_id) as (conn, item):
                item = await self._allowed(key, change_id, item, "approve")
                await self._same_policy(item["policy_in_force"])
                reviewed = await asyncio.to_thread(reviewed_file, self.settings.policy_dir())
                now = reviewed.digest if reviewed else None
                if item["reviewed_file"] and now != item["reviewed_file"]:
                    raise OpenAIError(409, f"the reviewed egress policy file changed since the simulation "
                                      f"({item['reviewed_file']} then, {now} now): simulate the candidate again",
                                      code="reviewed_file_changed")
                tenants = item["summary"].get("read") or list(key.tenant_ids)
                await conn.execute(OUT_OF_FORCE, change_id)
                await conn.execute(APPROVE, change_id, key.id, key.principal, note, now, tenants)
        except asyncpg.PostgresError as exc:
            raise OpenAIError(503, f"the approval was not recorded ({type(exc).__name__}): nothing was put in "
                              "force", "server_error", code="decision_not_recorded") from None
        return item, {"note": note, "by_principal": key.principal, "policy_in_force": item["policy_in_force"],
                      "reviewed_file": now, "proposer_principal": item["proposer_principal"] or key.principal}

    async def _same_policy(self, simulated_against: str) -> str:
        _, now = await self._in_force()
        if now != simulated_against:
            raise OpenAIError(409, f"the policy in force changed since the simulation ({simulated_against} then, "
                              f"{now} now): simulate the candidate again", code="policy_changed")
        return now

    async def _push(self, changes: EgressChanges, change_id: str, module: str) -> str:
        """The approved module in place of the egress module at OPA, after the approval committed: under a signed
        bundle, the bundle's new revision once OPA names it (MOE_OPA_BUNDLE_WAIT_S), else a module put with OPA's
        authenticated API. The version it made, kept on the change with the OPA instance that took it."""
        try:
            if self.bundles is not None:  # the bundle served from the commit on holds it: OPA loads and names it
                self.bundles.changed()  # OPA's poll held here answers with it now
                version = (await self.bundles.current()).revision
                await self.bundles.loaded(self.opa, version)
            else:
                modules, _ = await self._in_force()
                version = (await self.opa.put_module(egress_module(modules), module)).digest
            instance = await self.opa.instance()
        except (PolicyUnavailable, EvalError) as exc:
            raise OpenAIError(503, f"the policy engine did not take the candidate: {exc}", "server_error",
                              code="policy_unavailable") from None
        await changes.pool.execute(PUSHED, change_id, version, instance)
        return version

    async def _audit(self, key: ApiKey, action: str, change_id: str, summary: dict[str, Any],
                     details: dict[str, Any]) -> None:
        tenants = summary.get("read") or list(key.tenant_ids)  # the chains of the tenants whose records were read
        for tenant in tenants:
            await self.bus.publish(change_event(f"key:{key.id}", action, f"egress-policy-change:{change_id}", tenant,
                                                {"change_id": change_id, **details}), self.bus.topics.audit)
