"""The fleet configuration edited in the console or the admin API, in force without a restart (issue 54):

    GET  /v1/admin/fleet-config                          the configuration in force (servers with their API keys
                                                         masked, roles, experts per category, client profiles,
                                                         each with its source), the version, recent changes and
                                                         their audit records
    POST /v1/admin/fleet-config/changes                  {section, name, value, reason}: a change -> 201, applied,
                                                         or pending when the policy asks for approvals
    POST /v1/admin/fleet-config/changes/{id}/approve     {note}: another person's approval (applied at the count)
    POST /v1/admin/fleet-config/changes/{id}/reject      {note}

Every change is the policy's decision (policy/opa/config.rego: the fleet operator only; a new server, a removed one,
or a server's address or credentials changed needs one more person's approval, never the proposer's) and an audit
event (config.proposed, config.approved, config.applied, config.rejected: who, what, before and after, secrets
masked). Applied, it is a new version of the overlay (control_plane.fleet_config.store), published into Redis,
where every stage and the edge read it before their next message or request (moe_core.llm.inference.live). The
environment and YAML stay the defaults at start; the overlay survives a restart (Postgres, published again at
start)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio import Redis

from control_plane.admin.key_audit import change_event
from control_plane.fleet_config.changes import ChangeIn, masked, merge, plan
from control_plane.fleet_config.records import recorded_changes
from control_plane.fleet_config.store import FleetConfigStore, change_of
from control_plane.policy.gate import PolicyGate
from moe_core.access.keystore import ApiKey, KeyStore
from moe_core.access.request_auth import require_admin
from moe_core.audit.store import AuditStore
from moe_core.llm.client_profiles import ClientProfile
from moe_core.llm.inference.config import InferenceConfig
from moe_core.llm.inference.live import FleetOverrides, merged_profiles
from moe_core.runtime.bus import Bus
from moe_core.runtime.openai_error import OpenAIError, parse_json_body

log = logging.getLogger(__name__)
PATH = "moe/config/decision"
FLEET = "__fleet__"


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(default="", max_length=500)


class FleetConfigApi:
    def __init__(self, bus: Bus, keys: Callable[[], KeyStore], gate: PolicyGate, base: InferenceConfig,
                 profiles: list[ClientProfile], redis: Redis, namespace: str,
                 audit: Callable[[], Awaitable[AuditStore]]) -> None:
        self.bus, self.keys, self.gate, self.base, self.profiles = bus, keys, gate, base, profiles
        self.redis, self.namespace, self.audit = redis, namespace, audit
        self.router = APIRouter(prefix="/v1/admin/fleet-config", tags=["admin"])
        r = self.router
        r.add_api_route("", self.show, methods=["GET"])
        r.add_api_route("/changes", self.change, methods=["POST"], status_code=201)
        r.add_api_route("/changes/{change_id}/approve", self.approve, methods=["POST"])
        r.add_api_route("/changes/{change_id}/reject", self.reject, methods=["POST"])

    def store(self) -> FleetConfigStore:
        return FleetConfigStore(self.keys().pool, self.redis, self.namespace)

    async def start(self) -> None:
        """The overlay in force into Redis (Redis may have lost it, or a change was made while none ran)."""
        try:
            version = await self.store().publish()
        except Exception:  # the control plane serves on; the stages keep what they have
            log.exception("the fleet configuration's overlay was not published at start")
            return
        log.info("fleet configuration version %d published", version)

    async def _operator(self, request: Request) -> ApiKey:
        key = await require_admin(request, self.keys())
        await self.gate.decide(key, "moe/admin/decision", "config.read", FLEET, {"tenants": []}, "fleet-config")
        return key

    async def show(self, request: Request) -> dict[str, Any]:
        await self._operator(request)
        store = self.store()
        over = await _or_503(store.overlay())
        config = self.base.with_overrides(over)
        env_servers = {s.name for s in self.base.servers}
        return {
            "object": "fleet.configuration", "version": over.version, "changed_by": over.changed_by,
            "changed_at": over.changed_at.isoformat() if over.changed_at else None,
            "servers": [{**(masked(s) or {}), "source": _source(s.name, over.servers, env_servers)}
                        for s in config.servers],
            "roles": _table(config.roles, over.roles), "experts": _table(config.experts, over.experts),
            "profiles": [{**p.model_dump(mode="json"), "source": "console" if p.name in over.profiles
                          else "environment"} for p in merged_profiles(self.profiles, over)],
            "changes": await store.recent(50),
            "recorded": await recorded_changes(self.audit, 50),
        }

    async def change(self, request: Request) -> dict[str, Any]:
        key = await require_admin(request, self.keys())
        body = parse_json_body(await request.body(), ChangeIn)
        store = self.store()
        planned = plan(body, self.base, self.profiles, await _or_503(store.overlay()))
        subject = f"config:{body.section}/{body.name}"
        decision = await self.gate.decide(key, PATH, "config.change", FLEET, {
            "section": body.section, "name": body.name, "kind": planned.kind, "fields": planned.fields}, subject)
        required = int(decision.result.get("approvals_required", 1))
        row = await store.propose(body.section, body.name, planned.value, (planned.before, planned.after),
                                  required, (key.principal, key.id), body.reason)
        await self._audit(key, "config.proposed", row, {"approvals_required": required})
        if required > 0:
            return change_of(row)
        return await self._apply(key, row["id"])

    async def _apply(self, key: ApiKey, change_id: str) -> dict[str, Any]:
        def laid(over: FleetOverrides, change: asyncpg.Record) -> FleetOverrides:
            value = _json(change["value"])
            return merge(over, change["section"], change["name"], value, self.base)

        try:
            row, new = await self.store().apply(change_id, key.principal, laid)
        except LookupError:
            raise OpenAIError(409, f"the change {change_id} is no longer pending", code="already_decided") from None
        await self._audit(key, "config.applied", row, {"version": new.version})
        return change_of(row)

    async def _decided(self, request: Request, change_id: str, verb: str) -> tuple[ApiKey, str]:
        """The key and note of a decision on a pending change the policy lets this principal make."""
        key = await require_admin(request, self.keys())
        note = parse_json_body(await request.body() or b"{}", DecisionIn).note
        row = await self.store().one(change_id)
        if row is None:
            raise OpenAIError(404, f"no configuration change {change_id}", param="change_id", code="not_found")
        if row["status"] != "pending":
            raise OpenAIError(409, f"the change was already {row['status']}", code="already_decided")
        approvers = [a["principal"] for a in _json(row["approvals"])]
        await self.gate.decide(key, PATH, f"config.{verb}", FLEET, {
            "proposer": row["proposed_by"], "approvers": approvers, "section": row["section"],
            "name": row["name"]}, f"config:{row['section']}/{row['name']}")
        return key, note

    async def approve(self, change_id: str, request: Request) -> dict[str, Any]:
        key, note = await self._decided(request, change_id, "approve")
        approved = await self.store().approve(change_id, {"principal": key.principal, "key": key.id, "note": note})
        if approved is None:
            raise OpenAIError(409, "the change is no longer pending, or this principal approved it already",
                              code="already_decided")
        count = len(_json(approved["approvals"]))
        await self._audit(key, "config.approved", approved, {"approvals": count, "note": note})
        if count >= approved["approvals_required"]:
            return await self._apply(key, change_id)
        return change_of(approved)

    async def reject(self, change_id: str, request: Request) -> dict[str, Any]:
        key, note = await self._decided(request, change_id, "reject")
        rejected = await self.store().reject(change_id)
        if rejected is None:
            raise OpenAIError(409, "the change is no longer pending", code="already_decided")
        await self._audit(key, "config.rejected", rejected, {"note": note})
        return change_of(rejected)

    async def _audit(self, key: ApiKey, action: str, row: asyncpg.Record, details: dict[str, Any]) -> None:
        shown = change_of(row)
        event = change_event(f"key:{key.id}", action, f"config:{row['section']}/{row['name']}", "system", {
            "change": shown["id"], "by_principal": key.principal, "proposed_by": shown["proposed_by"],
            "before": shown["before"], "after": shown["after"], "reason": shown["reason"], **details})
        try:
            await self.bus.publish(event, self.bus.topics.audit)
        except Exception:  # the change stands; its record must not be lost silently
            log.exception("audit event %s of %s not published", action, shown["id"])


def _json(value: Any) -> Any:
    import json

    return json.loads(value) if isinstance(value, str) else value


def _source(name: str, over: dict[str, Any], env: set[str]) -> str:
    return "console" if name in over else "environment" if name in env else "console"


def _table(table: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    return {k: {"models": [str(r) for r in refs], "source": "console" if k in over else "environment"}
            for k, refs in sorted(table.items())}


async def _or_503(pending: Awaitable[FleetOverrides]) -> FleetOverrides:
    try:
        return await pending
    except asyncpg.UndefinedTableError:
        raise OpenAIError(503, "the fleet store is not migrated yet (python -m moe_core.runtime.pg.migrate)",
                          "server_error", code="store_not_migrated") from None
