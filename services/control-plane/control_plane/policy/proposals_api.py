"""Putting a simulated guardrail rule file in force, by two people (issue 50, "applying it needs four-eyes"):

    GET  /v1/guardrails/simulations[?limit=]          the simulations, newest first, with their counts per tenant
    POST /v1/guardrails/proposals                     {"simulation_id", "note"}: propose its candidate   -> 201
    GET  /v1/guardrails/proposals[?status=&limit=]    pending (default), applied, rejected or all
    GET  /v1/guardrails/proposals/{id}                one, with each changed tenant's rules before and after
    POST /v1/guardrails/proposals/{id}/approve        {"note"}: a second person approves; the candidate is applied
    POST /v1/guardrails/proposals/{id}/reject         {"note"}

Only a simulated candidate can be proposed, and only while the rules it was simulated against are still in force
(else 409 `rules_changed`: simulate again). Who may propose, approve or reject is Open Policy Agent's decision
(policy/opa/guardrails.rego): an admin of every tenant whose rules change; the approver is a person (never a
service account's key) and not the proposer, with any of their keys. An approval writes the rules file the
fleet's services read (MOE_GUARDRAILS_FILE, replaced at once) once the decision has committed in Postgres (a Postgres
failure before leaves the rules and the proposal as they were): every GuardrailBook reads it again within
MOE_GUARDRAILS_RELOAD_S, with no restart. A process that dies between the commit and the write leaves an applied
proposal whose file was not written: the control plane writes it when it starts (reconcile_rules). Rules given
inline (MOE_GUARDRAILS) cannot be applied this way (409). Decisions take the fleet's apply lock one at a time
(control_plane.policy.apply_lock); one that waited MOE_GUARDRAILS_APPLY_WAIT_S for it answers 503 `apply_busy`
naming the Postgres session holding it, and nothing is decided.
The proposal, the approval, the application and a rejection are audit events on each changed tenant's chain."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from control_plane.admin.key_audit import change_event
from control_plane.policy.apply_lock import ApplyBusy
from control_plane.policy.gate import PolicyGate
from control_plane.policy.guardrail_changes import (
    GuardrailChanges,
    LockedProposal,
    changes,
    reconcile,
    write_rules,
)
from control_plane.settings import ControlPlaneSettings
from moe_core.access.keystore import ApiKey, KeyStore
from moe_core.access.request_auth import require_admin
from moe_core.llm.guardrails import GuardrailBook, parse
from moe_core.llm.guardrails.book import rules_version
from moe_core.runtime import query_params
from moe_core.runtime.bus import Bus
from moe_core.runtime.openai_error import OpenAIError, parse_json_body
from moe_core.runtime.settings import FleetSettings

log = logging.getLogger(__name__)
POLICY = "moe/guardrails/decision"
STATUSES = ("pending", "applied", "rejected", "all")


class ProposalBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    simulation_id: str = Field(min_length=1, max_length=64)
    note: str = Field(default="", max_length=1000)


class NoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=1000)


def scope(key: ApiKey) -> list[str] | None:
    """The tenants a key sees changes of (None: the operator, every tenant's)."""
    return None if key.role == "operator" else list(key.tenant_ids)


def _counts(summary: dict[str, Any], key: ApiKey) -> dict[str, Any]:
    wanted = scope(key)
    return {t: c for t, c in summary.items() if wanted is None or t in wanted}


def simulation_view(sim: dict[str, Any], key: ApiKey) -> dict[str, Any]:
    return {"object": "guardrails.simulation", "id": sim["id"], "candidate": sim["candidate"],
            "rules_in_force": sim["rules_in_force"], "days": sim["days"], "created_at": sim["created_at"],
            "actor_principal": sim["actor_principal"], "tenants": _counts(sim["summary"], key)}


def proposal_view(p: dict[str, Any], key: ApiKey) -> dict[str, Any]:
    return {"object": "guardrails.proposal", "id": p["id"], "simulation_id": p["simulation_id"],
            "candidate": p["candidate"], "rules_in_force": p["rules_in_force"], "tenants": p["tenants"],
            "changes": p["changes"], "counts": _counts(p["summary"], key), "status": p["status"],
            "proposer_principal": p["proposer_principal"], "note": p["note"], "created_at": p["created_at"],
            "decided_at": p["decided_at"], "decided_principal": p["decided_principal"],
            "decision_note": p["decision_note"]}


def writable(book: GuardrailBook) -> Path:
    """The rules file an approval replaces, or 409 naming why there is none this process may replace."""
    if book.inline:
        raise OpenAIError(409, "the rules in force are given inline (MOE_GUARDRAILS): applying needs a rules file "
                          "(MOE_GUARDRAILS_FILE) the control plane may replace", code="rules_not_writable")
    if book.path is None or not os.access(book.path.parent, os.W_OK):
        raise OpenAIError(409, f"the rules file {book.path or '(none)'} is missing or its folder is not writable by "
                          "the control plane", code="rules_not_writable")
    return book.path


class ProposalsApi:
    def __init__(self, settings: ControlPlaneSettings, bus: Bus, keys: Callable[[], KeyStore],
                 gate: PolicyGate) -> None:
        self.settings, self.bus, self.keys, self.gate = settings, bus, keys, gate
        self.router = APIRouter()
        r = self.router
        r.add_api_route("/v1/guardrails/simulations", self.simulations, methods=["GET"])
        r.add_api_route("/v1/guardrails/proposals", self.propose, methods=["POST"], status_code=201)
        r.add_api_route("/v1/guardrails/proposals", self.proposals, methods=["GET"])
        r.add_api_route("/v1/guardrails/proposals/{proposal_id}", self.get, methods=["GET"])
        r.add_api_route("/v1/guardrails/proposals/{proposal_id}/approve", self.approve, methods=["POST"])
        r.add_api_route("/v1/guardrails/proposals/{proposal_id}/reject", self.reject, methods=["POST"])

    def store(self) -> GuardrailChanges:
        return GuardrailChanges(self.keys().pool, self.settings.topic_namespace)

    def book(self) -> GuardrailBook:
        return GuardrailBook.from_settings(self.settings)

    async def simulations(self, request: Request) -> dict[str, Any]:
        key = await require_admin(request, self.keys())
        found = await self.store().simulations(scope(key), query_params.integer(request, "limit", 50, 1, 500))
        return {"object": "list", "data": [simulation_view(s, key) for s in found]}

    async def proposals(self, request: Request) -> dict[str, Any]:
        key = await require_admin(request, self.keys())
        status = query_params.choice(request, "status", STATUSES, "pending")
        found = await self.store().proposals(None if status == "all" else status, scope(key),
                                             query_params.integer(request, "limit", 50, 1, 500))
        return {"object": "list", "data": [proposal_view(p, key) for p in found]}

    async def get(self, proposal_id: str, request: Request) -> dict[str, Any]:
        key = await require_admin(request, self.keys())
        found = await self.store().proposal(proposal_id, scope(key))
        if found is None:
            raise _unknown(proposal_id)
        return proposal_view(found, key)

    async def propose(self, request: Request) -> dict[str, Any]:
        key = await require_admin(request, self.keys())
        body = parse_json_body(await request.body(), ProposalBody)
        sim = await self.store().simulation(body.simulation_id, scope(key))
        if sim is None:
            raise OpenAIError(404, f"No simulation '{body.simulation_id}'", param="simulation_id", code="not_found")
        book = self.book()
        _same_rules(book, sim["rules_in_force"])
        changed = changes(book.rules, parse(sim["rules"], "the simulated candidate"))
        if not changed:
            raise OpenAIError(409, "the candidate changes no tenant's rules", code="no_change")
        await self.gate.decide(key, POLICY, "guardrails.propose", next(iter(changed)),
                               {"tenants": sorted(changed)}, f"guardrails-simulation:{sim['id']}")
        writable(book)
        proposal_id = await self.store().propose(simulation_id=sim["id"], changed=changed, proposer_key=key.id,
                                                 proposer_principal=key.principal, note=body.note)
        await self._audit(key, "guardrails.proposed", proposal_id, sorted(changed), {
            "simulation_id": sim["id"], "candidate": sim["candidate"], "rules_in_force": sim["rules_in_force"],
            "note": body.note, "by_principal": key.principal})
        return await self.get(proposal_id, request)

    async def approve(self, proposal_id: str, request: Request) -> dict[str, Any]:
        return await self._decide(proposal_id, request, "approve")

    async def reject(self, proposal_id: str, request: Request) -> dict[str, Any]:
        return await self._decide(proposal_id, request, "reject")

    async def _decide(self, proposal_id: str, request: Request, verb: str) -> dict[str, Any]:
        key = await require_admin(request, self.keys())
        body = parse_json_body(await request.body() or b"{}", NoteBody)
        written: list[Path] = []
        async with self._locked(proposal_id, key, verb) as lk:
            p = lk.item
            if p is None:
                raise _unknown(proposal_id)
            await self.gate.decide(key, POLICY, f"guardrails.{verb}", p["tenants"][0], {
                "tenants": p["tenants"], "proposer": p["proposer_principal"], "status": p["status"]},
                f"guardrails-proposal:{proposal_id}")
            if p["status"] != "pending":
                raise OpenAIError(409, f"the proposal was already {p['status']}", code="already_decided")
            details: dict[str, Any] = {"simulation_id": p["simulation_id"], "candidate": p["candidate"],
                                       "note": body.note, "by_principal": key.principal,
                                       "proposer_principal": p["proposer_principal"]}
            if verb == "approve":  # the decision commits first, then the file is replaced (reconcile_rules)
                book = self.book()
                _same_rules(book, p["rules_in_force"])
                path, text = writable(book), await lk.candidate_text()
                lk.after_commit(lambda: _write_after_commit(path, text, proposal_id, written))
                details["file"] = str(path)
            await lk.decide("applied" if verb == "approve" else "rejected", key.id, key.principal, body.note,
                            Path(details["file"]) if "file" in details else None)
        if verb == "approve":  # after the commit
            await self._audit(key, "guardrails.approved", proposal_id, p["tenants"], details)
            if not written:  # approved (committed) but not in force: the control plane writes it at its next start
                raise OpenAIError(503, "the proposal is approved, but the rules file could not be written: the "
                                  "control plane writes it when it starts again", code="rules_not_written")
            await self._audit(key, "guardrails.applied", proposal_id, p["tenants"], {
                **details, "rules_in_force": self.book().version, "replaced": p["rules_in_force"]})
        else:
            await self._audit(key, "guardrails.rejected", proposal_id, p["tenants"], details)
        return await self.get(proposal_id, request)

    @asynccontextmanager
    async def _locked(self, proposal_id: str, key: ApiKey, verb: str) -> AsyncIterator[LockedProposal]:
        """The proposal locked for this decision, or 503 apply_busy (nothing decided) naming who holds the fleet's
        apply lock, once it has been waited for MOE_GUARDRAILS_APPLY_WAIT_S."""
        wait_s = self.settings.guardrails_apply_wait_s
        try:
            async with self.store().locked(proposal_id, scope(key), wait_s) as lk:
                yield lk
        except ApplyBusy as busy:
            log.warning("a guardrail proposal's %s waited %.0f s for the apply lock: %s", verb, wait_s, busy)
            done = "approved" if verb == "approve" else "rejected"
            raise OpenAIError(503, f"another decision of this fleet's guardrail rules has held the apply lock for "
                              f"more than {wait_s:.0f} s (MOE_GUARDRAILS_APPLY_WAIT_S): {busy}; nothing was "
                              f"{done}, try again", "server_error", code="apply_busy") from None

    async def _audit(self, key: ApiKey, action: str, proposal_id: str, tenants: list[str],
                     details: dict[str, Any]) -> None:
        for tenant in tenants:  # one record on each changed tenant's chain
            event = change_event(f"key:{key.id}", action, f"guardrails-proposal:{proposal_id}", tenant, details)
            try:
                await self.bus.publish(event, self.bus.topics.audit)
            except Exception:  # the change is made; its record must not be lost silently
                log.exception("audit event %s %s not published", action, proposal_id)


async def _write_after_commit(path: Path, text: str, proposal_id: str, written: list[Path]) -> None:
    try:
        await asyncio.to_thread(write_rules, path, text)
        written.append(path)
    except OSError as exc:  # the approval stands (committed): the control plane writes the file at its next start
        log.error("guardrail proposal %s approved, but its rules file %s was not written: %s", proposal_id, path, exc)


async def reconcile_rules(settings: FleetSettings, store: GuardrailChanges, bus: Bus) -> str:
    """At start: a proposal approved (committed) whose rules file was never written, because the process died
    between, is put in force now, and its application recorded (guardrails.applied, reconciled). Under the fleet's
    apply lock, so no replica's decision writes between its read and its write."""
    book = GuardrailBook.from_settings(settings)
    if book.inline or book.path is None:
        return "none"
    async with store.applying(None) as conn:  # under the fleet's apply lock, or skipped while a decision holds it
        if conn is None:  # (that decision writes the file itself once it commits)
            log.info("a guardrail decision holds the apply lock: the rules file is not reconciled at this start")
            return "busy"
        applied = await store.last_applied(book.path)
        outcome = await asyncio.to_thread(reconcile, book.path, applied)
    if outcome == "changed_since":
        log.warning("the guardrail rules file %s is neither the last applied proposal's rules nor those it replaced:"
                    " changed by other means since, left as it is", book.path)
    if outcome == "written" and applied is not None:
        log.warning("guardrail proposal %s was approved but its rules file not written: written now", applied["id"])
        for tenant in applied["tenants"]:
            event = change_event("service:control-plane", "guardrails.applied", f"guardrails-proposal:"
                                 f"{applied['id']}", tenant, {"reconciled": True, "file": str(book.path),
                                                               "rules_in_force": rules_version(applied["rules"]),
                                                               "replaced": applied["rules_in_force"]})
            await bus.publish(event, bus.topics.audit)
    return outcome


def _same_rules(book: GuardrailBook, simulated_against: str) -> None:
    if book.version != simulated_against:
        raise OpenAIError(409, f"the rules in force changed since the simulation ({simulated_against} then, "
                          f"{book.version} now): simulate the candidate again", code="rules_changed")


def _unknown(proposal_id: str) -> OpenAIError:
    return OpenAIError(404, f"No proposal '{proposal_id}'", param="proposal_id", code="not_found")
