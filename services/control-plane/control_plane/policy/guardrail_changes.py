"""Guardrail rule changes in Postgres: every simulation of a candidate rule file (who, the candidate's text and
digest, the rules in force it was compared with, the counts per tenant) and the proposals to put a simulated
candidate in force, each with the tenants whose rules it changes, those tenants' rules before and after, and the
decision of a second person (policy/opa/guardrails.rego). The tables are made by the migrator role
(moe_core.runtime.pg.ddl, migration `guardrail-changes`); nothing here builds SQL at run time."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg

from control_plane.policy.apply_lock import ApplyLock
from moe_core.llm.guardrails import RuleFile
from moe_core.llm.guardrails.book import rules_version

INSERT_SIMULATION = """
INSERT INTO guardrail_simulations (id, candidate, rules, rules_in_force, days, tenants, summary, actor_key,
                                   actor_principal, namespace)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10)
"""
SIMULATION_COLUMNS = ("SELECT id, candidate, rules, rules_in_force, days, tenants, summary, actor_key, actor_principal,"
                      " created_at FROM guardrail_simulations ")
# a fleet's own (namespace): another fleet on the database simulated on its own traffic for its own rules file
SELECT_SIMULATION = (SIMULATION_COLUMNS + "WHERE id = $1 AND namespace = $3 AND "
                     "($2::text[] IS NULL OR tenants && $2::text[])")
LIST_SIMULATIONS = (SIMULATION_COLUMNS + "WHERE namespace = $3 AND ($1::text[] IS NULL OR tenants && $1::text[]) "
                    "ORDER BY created_at DESC, id LIMIT $2")
INSERT_PROPOSAL = """
INSERT INTO guardrail_proposals (id, simulation_id, tenants, changes, status, proposer_key, proposer_principal, note)
VALUES ($1, $2, $3, $4::jsonb, 'pending', $5, $6, $7)
"""
PROPOSAL_COLUMNS = (
    "SELECT p.id, p.simulation_id, p.tenants, p.changes, p.status, p.proposer_key, p.proposer_principal, p.note, "
    "p.created_at, p.decided_at, p.decided_key, p.decided_principal, p.decision_note, s.candidate, s.rules_in_force, "
    "s.summary FROM guardrail_proposals p JOIN guardrail_simulations s ON s.id = p.simulation_id ")
# a tenant admin sees a proposal only when it changes its tenants' rules alone (None: the operator, every one)
SCOPE = "($2::text[] IS NULL OR (cardinality(p.tenants) > 0 AND p.tenants <@ $2::text[]))"
SELECT_PROPOSAL = PROPOSAL_COLUMNS + "WHERE p.id = $1 AND s.namespace = $3 AND " + SCOPE
LOCK_PROPOSAL = SELECT_PROPOSAL + " FOR UPDATE OF p"
LIST_PROPOSALS = (PROPOSAL_COLUMNS + "WHERE ($1::text IS NULL OR p.status = $1) AND s.namespace = $4 AND "
                  + SCOPE + " ORDER BY p.created_at DESC, p.id LIMIT $3")
CANDIDATE_TEXT = "SELECT rules FROM guardrail_simulations WHERE id = $1"
# the last proposal put in force, with its candidate's text and the rules it replaced (reconcile)
LAST_APPLIED = """
SELECT p.id, p.tenants, s.rules, s.candidate, s.rules_in_force FROM guardrail_proposals p
JOIN guardrail_simulations s ON s.id = p.simulation_id
WHERE p.status = 'applied' AND p.rules_file = $1 AND ($2::text IS NULL OR p.id = $2)
ORDER BY p.decided_at DESC, p.id DESC LIMIT 1
"""
# one decision at a time across a fleet's control plane replicas, from the proposal's row lock to the file's write
# (apply_lock). Per fleet, not per tenant: every candidate is a whole rules file, so two tenants' approvals at once
# would both pass the rules_changed check and the second write would undo the first; another fleet on the database
# writes its own rules file and never waits for this one
APPLYING = "guardrails"
DECIDE = """
UPDATE guardrail_proposals SET status = $2, decided_at = now(), decided_key = $3, decided_principal = $4,
       decision_note = $5, rules_file = $6
WHERE id = $1 AND status = 'pending'
"""


def _row(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    for name in ("summary", "changes"):
        if isinstance(out.get(name), str):
            out[name] = json.loads(out[name])
    out["tenants"] = list(out["tenants"])
    return out


def changes(current: RuleFile, candidate: RuleFile) -> dict[str, dict[str, Any]]:
    """The tenants whose rules the candidate changes, each with its rules before and after (None: none)."""
    out: dict[str, dict[str, Any]] = {}
    for tenant in sorted({*current.tenants, *candidate.tenants}):
        before, after = current.tenants.get(tenant), candidate.tenants.get(tenant)
        if before != after:
            out[tenant] = {"before": before.model_dump(exclude_defaults=True) if before else None,
                           "after": after.model_dump(exclude_defaults=True) if after else None}
    return out


def write_rules(path: Path, text: str) -> None:
    """The rules file replaced at once (a reader sees the old file or the new one, never half of one): every
    process's GuardrailBook reads it again within MOE_GUARDRAILS_RELOAD_S, no restart."""
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class GuardrailChanges:
    def __init__(self, pool: asyncpg.Pool, namespace: str = "") -> None:
        """namespace: the fleet's (MOE_TOPIC_NAMESPACE): its simulations and proposals only, and its apply lock."""
        self.pool, self.namespace = pool, namespace

    async def add_simulation(self, *, candidate: str, rules: str, in_force: str, days: float, tenants: list[str],
                             summary: dict[str, Any], actor_key: str, actor_principal: str) -> str:
        sim_id = f"gsim-{uuid.uuid4().hex[:20]}"
        await self.pool.execute(INSERT_SIMULATION, sim_id, candidate, rules, in_force, days, tenants,
                                json.dumps(summary), actor_key, actor_principal, self.namespace)
        return sim_id

    async def simulation(self, sim_id: str, tenants: list[str] | None) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(SELECT_SIMULATION, sim_id, tenants, self.namespace)
        return _row(row) if row else None

    async def simulations(self, tenants: list[str] | None, limit: int) -> list[dict[str, Any]]:
        return [_row(r) for r in await self.pool.fetch(LIST_SIMULATIONS, tenants, limit, self.namespace)]

    async def propose(self, *, simulation_id: str, changed: dict[str, Any], proposer_key: str,
                      proposer_principal: str, note: str) -> str:
        proposal_id = f"gprop-{uuid.uuid4().hex[:20]}"
        await self.pool.execute(INSERT_PROPOSAL, proposal_id, simulation_id, sorted(changed), json.dumps(changed),
                                proposer_key, proposer_principal, note)
        return proposal_id

    async def proposal(self, proposal_id: str, tenants: list[str] | None) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(SELECT_PROPOSAL, proposal_id, tenants, self.namespace)
        return _row(row) if row else None

    async def proposals(self, status: str | None, tenants: list[str] | None, limit: int) -> list[dict[str, Any]]:
        return [_row(r) for r in await self.pool.fetch(LIST_PROPOSALS, status, tenants, limit, self.namespace)]

    @asynccontextmanager
    async def locked(self, proposal_id: str, tenants: list[str] | None,
                     wait_s: float) -> AsyncIterator[LockedProposal]:
        """The proposal row-locked for one decision; what is done through the handle commits together, and what
        is handed to `after_commit` runs once it has committed (the rules file's write: a Postgres failure before
        leaves the file as it was, the proposal pending). Decisions are one at a time per fleet (its apply lock,
        held until after the write), so no two approvals interleave their commit and write; one waits for the lock
        at most `wait_s`, then ApplyBusy (nothing read, nothing decided)."""
        async with self.applying(wait_s) as conn:
            assert conn is not None  # (waited for: ApplyBusy, never None)
            async with conn.transaction():
                row = await conn.fetchrow(LOCK_PROPOSAL, proposal_id, tenants, self.namespace)
                handle = LockedProposal(conn, proposal_id, _row(row) if row else None)
                yield handle
            for action in handle.after:
                await action()

    def applying(self, wait_s: float | None) -> AbstractAsyncContextManager[asyncpg.Connection | None]:
        """The fleet's apply lock (apply_lock.ApplyLock.held)."""
        return ApplyLock(self.pool, APPLYING, self.namespace).held(wait_s)

    async def last_applied(self, rules_file: Path, proposal_id: str | None = None) -> dict[str, Any] | None:
        """The last proposal applied to `rules_file` (or `proposal_id`, when it was) with its candidate's text."""
        row = await self.pool.fetchrow(LAST_APPLIED, str(rules_file), proposal_id)
        return _row(row) if row else None


class LockedProposal:
    def __init__(self, conn: asyncpg.Connection, proposal_id: str, item: dict[str, Any] | None) -> None:
        self.conn, self.id, self.item = conn, proposal_id, item
        self.after: list[Callable[[], Awaitable[None]]] = []

    def after_commit(self, action: Callable[[], Awaitable[None]]) -> None:
        self.after.append(action)

    async def candidate_text(self) -> str:
        assert self.item is not None
        return str(await self.conn.fetchval(CANDIDATE_TEXT, self.item["simulation_id"]))

    async def decide(self, status: str, key_id: str, principal: str, note: str, rules_file: Path | None = None) -> None:
        """`rules_file`: the file an approval writes (after the commit)."""
        await self.conn.execute(DECIDE, self.id, status, key_id, principal, note,
                                str(rules_file) if rules_file is not None else None)


def reconcile(path: Path, applied: dict[str, Any] | None) -> str:
    """At start: the rules file against the last applied proposal (`applied`, GuardrailChanges.last_applied). Its
    decision committed but its file was never written (the process died between): written now ("written"). The
    file holds the candidate ("in_force") or no proposal was applied ("none"); the file was changed since by other
    means, a reviewed commit ("changed_since": left as it is)."""
    if applied is None:
        return "none"
    try:
        current = rules_version(path.read_text())
    except OSError:
        current = ""
    if current == rules_version(applied["rules"]):
        return "in_force"
    if current != applied["rules_in_force"]:
        return "changed_since"
    write_rules(path, applied["rules"])
    return "written"
