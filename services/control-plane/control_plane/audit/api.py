"""The audit API: what the fleet did for one request, from the audit store codex-lineage keeps.

GET /v1/audit/{response_id}[?verify=true]: the timeline (every message of every topic for the request, in
order, with stage, topic, partition, offset, created_at, broker timestamp and a payload summary), the
stage runs (from the lineage: job, start, end, state) and, with verify=true, the hash-chain verification.
GET /v1/lineage/{response_id}: the fleet's one read of a request's lineage (moe_core.audit.request_lineage): its
OpenLineage run events, the provenance of the knowledge-graph facts it used (the imports that wrote them, their
approvals, their source documents) and its data classification (policy/data-classes.yaml: its tenant's class, what it
reached, what of that its class forbids).

Any key may read its own tenants' requests (a tenant admin too: no more). Another tenant's request is a 404,
exactly like an unknown one (nobody learns which ids exist), unless the policy lets the caller read across
tenants (policy/opa/admin.rego: the fleet operator): each such read is a policy decision and an audit record."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
from fastapi import APIRouter, Request

from control_plane.policy.gate import PolicyGate
from control_plane.settings import ControlPlaneSettings
from moe_core.access.keystore import KeyStore
from moe_core.access.request_auth import authenticate
from moe_core.access.throttle import Throttle
from moe_core.audit.request_lineage import request_lineage
from moe_core.audit.store import AuditStore, timeline
from moe_core.audit.verify import load_trust, load_witness
from moe_core.contracts.client_ids import bare_response_id
from moe_core.policy.classes import ClassFile, classify_request
from moe_core.runtime.openai_error import OpenAIError


def stage_runs(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per run: its job, stage, parent, start and end times and final state."""
    runs: dict[str, dict[str, Any]] = {}
    for event in events:
        run_id = event["run"]["runId"]
        row = runs.setdefault(run_id, {"run_id": run_id, "job": event["job"]["name"],
                                       "stage": event["job"]["name"].split(".")[0], "started_at": None,
                                       "ended_at": None, "state": "RUNNING", "parent_run_id": None})
        parent = (event["run"].get("facets") or {}).get("parent")
        if parent:
            row["parent_run_id"] = parent["run"]["runId"]
        if event.get("eventType") == "START":
            row["started_at"] = event["eventTime"]
        elif event.get("eventType") in ("COMPLETE", "FAIL", "ABORT"):
            row["ended_at"], row["state"] = event["eventTime"], event["eventType"]
    return sorted(runs.values(), key=lambda r: (r["parent_run_id"] is not None, r["started_at"] or ""))


class AuditApi:
    def __init__(self, settings: ControlPlaneSettings, keys: Callable[[], KeyStore], throttle: Throttle,
                 gate: PolicyGate) -> None:
        self.settings = settings
        self.gate = gate
        self.throttle = throttle
        self.keys = keys
        self.classes = ClassFile(settings.classes_path())  # a broken data-class file: refused at start
        self._store: AuditStore | None = None
        self.router = APIRouter()
        self.router.add_api_route("/v1/audit/{response_id}", self.audit, methods=["GET"])
        self.router.add_api_route("/v1/lineage/{response_id}", self.lineage, methods=["GET"])

    async def store(self) -> AuditStore:
        if self._store is None:  # read-only: codex-lineage's migration creates the tables, never the control plane
            self._store = await AuditStore.connect(self.settings.postgres_dsn, self.settings.audit_schema,
                                                   migrate=False)
        return self._store

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()
            self._store = None

    async def _visible(self, request: Request, response_id: str, verify: bool = False) -> tuple[AuditStore, str]:
        key = await authenticate(request, self.keys())
        if verify:  # re-reads and re-hashes the request's whole chain: limited per key (moe_core.access.throttle)
            await self.throttle.spend(key, "audit_verifications")
        if not 0 < len(response_id) <= 128:
            raise OpenAIError(400, "response_id must be 1 to 128 characters", param="response_id")
        store = await self.store()
        try:
            owner = await store.owner(bare_response_id(response_id))
        except asyncpg.UndefinedTableError:
            raise OpenAIError(503, "the audit store is not set up yet (codex-lineage creates it)", "server_error",
                              code="audit_store_missing") from None
        missing = OpenAIError(404, f"No audit record of request '{response_id}'", code="not_found")
        if owner is None:
            raise missing
        if owner not in key.tenant_ids:  # another tenant's: only where the policy allows, and audited
            decision = await self.gate.ask(key, "moe/admin/decision", "audit.read", owner,
                                           {"tenants": [owner], "response_id": response_id}, response_id)
            if not decision.allowed:
                raise missing
        return store, owner

    async def audit(self, response_id: str, request: Request, verify: bool = False) -> dict[str, Any]:
        store, owner = await self._visible(request, response_id, verify)
        response_id = bare_response_id(response_id)
        events = await store.lineage(response_id)
        body: dict[str, Any] = {"object": "audit.request", "response_id": response_id, "tenant_id": owner,
                                "timeline": timeline(await store.records(response_id)),
                                "stage_runs": stage_runs(events), "lineage_events": len(events)}
        if verify:  # with the public key and the TSA chain only: the control plane cannot sign
            s = self.settings
            trust = load_trust(s.audit_public_key, s.audit_tsa_chain, s.audit_timestamp_skew_s, s.audit_keyring)
            body["verification"] = await store.verify(response_id, trust, load_witness(s.audit_witness_key))
        return body

    async def lineage(self, response_id: str, request: Request) -> dict[str, Any]:
        store, owner = await self._visible(request, response_id)
        book = self.classes.current()
        return await request_lineage(store, bare_response_id(response_id),
                                     lambda tenant, events: classify_request(book, tenant, events), owner)
