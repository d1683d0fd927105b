"""Egress policy changes in Postgres (egress_policy_changes, migration `egress-changes`): one row per candidate
egress module, from its simulation (who, the module, the policy version and the reviewed policy/opa/egress.rego it was
compared with, the counts) through its proposal to a second person's decision and the policy version the application
made. A fleet's last approved change is the one in force (`in_force`, one row per fleet) until a newer approved
change or a newer reviewed file supersedes it; an advisory lock per fleet keeps an approval's push and the
reconcile's from crossing (control_plane.policy.egress_reconcile). Nothing here builds SQL at run time."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import asyncpg

from control_plane.policy.apply_lock import ApplyLock

COLUMNS = ("SELECT id, candidate, module, policy_in_force, reviewed_file, days, summary, status, simulated_principal, "
           "proposer_principal, note, decided_principal, decision_note, applied_version, in_force, superseded_by, "
           "created_at, proposed_at, decided_at, superseded_at FROM egress_policy_changes ")
INSERT = """
INSERT INTO egress_policy_changes (id, candidate, module, policy_in_force, days, summary, status, simulated_key,
                                   simulated_principal, reviewed_file, namespace)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, 'simulated', $7, $8, $9, $10)
"""
SELECT = COLUMNS + "WHERE id = $1 AND namespace = $2"
LOCK = "SELECT id, module, policy_in_force, reviewed_file, status, proposer_principal, summary " \
       "FROM egress_policy_changes WHERE id = $1 AND namespace = $2 FOR UPDATE"
# a fleet's own changes only: another fleet on the same database (e.g. a staging one) has its own OPA, and its
# changes are neither listed nor decided here (a decision would push another fleet's module into this fleet's OPA)
LIST = COLUMNS + "WHERE namespace = $3 AND ($1::text IS NULL OR status = $1) ORDER BY created_at DESC, id LIMIT $2"
PROPOSE = """
UPDATE egress_policy_changes SET status = 'pending', proposer_key = $2, proposer_principal = $3, note = $4,
       proposed_at = now()
WHERE id = $1
"""
DECIDE = """
UPDATE egress_policy_changes SET status = $2, decided_key = $3, decided_principal = $4, decision_note = $5,
       applied_version = $6, decided_at = now()
WHERE id = $1 AND status = 'pending'
"""
# an approval: the change is the one in force (the previous one no longer), its push to OPA follows the commit
OUT_OF_FORCE = """
UPDATE egress_policy_changes SET in_force = false
WHERE in_force AND id <> $1 AND namespace = (SELECT namespace FROM egress_policy_changes WHERE id = $1)
"""
APPROVE = """
UPDATE egress_policy_changes SET status = 'applied', in_force = true, decided_key = $2, decided_principal = $3,
       decision_note = $4, reviewed_file = $5, audit_tenants = $6, decided_at = now()
WHERE id = $1 AND status = 'pending'
"""
PUSHED = """
UPDATE egress_policy_changes SET applied_version = coalesce(applied_version, $2), pushed_to = $3
WHERE id = $1 AND in_force
"""
IN_FORCE = """
SELECT id, module, reviewed_file, applied_version, pushed_to, audit_tenants FROM egress_policy_changes
WHERE in_force AND namespace = $1
"""
SUPERSEDE = """
UPDATE egress_policy_changes SET status = 'superseded', in_force = false, superseded_by = $2, superseded_at = now()
WHERE id = $1 AND in_force
"""
# one push at a time across a fleet's control plane replicas (an approval's, or the reconcile's); each fleet on the
# database pushes to its own OPA, so one fleet's push never waits for another's (apply_lock: named per namespace)
APPLYING = "egress-policy"


def view(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    if isinstance(out.get("summary"), str):
        out["summary"] = json.loads(out["summary"])
    for name in ("created_at", "proposed_at", "decided_at", "superseded_at"):
        out[name] = out[name].isoformat() if out.get(name) else None
    return {"object": "egress_policy.change", **out}


class EgressChanges:
    def __init__(self, pool: asyncpg.Pool, namespace: str = "") -> None:
        """namespace: the fleet's (MOE_TOPIC_NAMESPACE); a change is kept in force by its own fleet's control planes
        only (another fleet on the same database, e.g. a staging one, has its own OPA and its own changes)."""
        self.pool, self.namespace = pool, namespace

    async def add_simulation(self, *, candidate: str, module: str, in_force: str, days: float,
                             summary: dict[str, Any], key_id: str, principal: str, reviewed_file: str | None) -> str:
        change_id = f"esim-{uuid.uuid4().hex[:20]}"
        await self.pool.execute(INSERT, change_id, candidate, module, in_force, days, json.dumps(summary), key_id,
                                principal, reviewed_file, self.namespace)
        return change_id

    async def get(self, change_id: str) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(SELECT, change_id, self.namespace)
        return view(row) if row else None

    async def listed(self, status: str | None, limit: int) -> list[dict[str, Any]]:
        return [view(r) for r in await self.pool.fetch(LIST, status, limit, self.namespace)]

    @asynccontextmanager
    async def locked(self, change_id: str) -> AsyncIterator[tuple[asyncpg.Connection, dict[str, Any] | None]]:
        """The change row-locked for one transition; what is written on the connection commits together."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(LOCK, change_id, self.namespace)
            item = dict(row) if row else None
            if item and isinstance(item.get("summary"), str):
                item["summary"] = json.loads(item["summary"])
            yield conn, item

    def applying(self, wait_s: float | None) -> AbstractAsyncContextManager[asyncpg.Connection | None]:
        """The fleet's apply lock held (on a connection of its own) for one push. `wait_s` None: tried once, None
        when another holds it (the reconcile skips its turn); else waited for at most `wait_s`, then ApplyBusy
        naming the session that holds it (a push that hangs never makes an approval hang with it)."""
        return ApplyLock(self.pool, APPLYING, self.namespace).held(wait_s)


async def in_force_change(pool: asyncpg.Pool, namespace: str) -> dict[str, Any] | None:
    """The fleet's approved change in force (IN_FORCE), None without one (or before the table exists)."""
    try:
        row = await pool.fetchrow(IN_FORCE, namespace)
    except asyncpg.UndefinedTableError:
        return None
    return dict(row) if row is not None else None
