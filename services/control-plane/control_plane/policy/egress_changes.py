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
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

COLUMNS = ("SELECT id, candidate, module, policy_in_force, reviewed_file, days, summary, status, simulated_principal, "
           "proposer_principal, note, decided_principal, decision_note, applied_version, in_force, superseded_by, "
           "created_at, proposed_at, decided_at, superseded_at FROM egress_policy_changes ")
INSERT = """
INSERT INTO egress_policy_changes (id, candidate, module, policy_in_force, days, summary, status, simulated_key,
                                   simulated_principal, reviewed_file, namespace)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, 'simulated', $7, $8, $9, $10)
"""
SELECT = COLUMNS + "WHERE id = $1"
LOCK = "SELECT id, module, policy_in_force, reviewed_file, status, proposer_principal, summary " \
       "FROM egress_policy_changes WHERE id = $1 FOR UPDATE"
LIST = COLUMNS + "WHERE ($1::text IS NULL OR status = $1) ORDER BY created_at DESC, id LIMIT $2"
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
# database ($1: its namespace) pushes to its own OPA, so one fleet's push never waits for another's
APPLY_LOCK = "SELECT pg_advisory_lock(hashtext('moe:egress-policy:apply:' || $1::text))"
TRY_APPLY_LOCK = "SELECT pg_try_advisory_lock(hashtext('moe:egress-policy:apply:' || $1::text))"
APPLY_UNLOCK = "SELECT pg_advisory_unlock(hashtext('moe:egress-policy:apply:' || $1::text))"
# who holds it (a one-key advisory lock is listed with the key's low 32 bits in objid and objsubid 1)
HOLDER = """
SELECT a.pid, a.application_name, a.client_addr::text AS client, a.state, a.backend_start, a.state_change,
       left(a.query, 300) AS query
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.objid = (hashtext('moe:egress-policy:apply:' || $1::text)::bigint & 4294967295)::oid
"""


class ApplyBusy(Exception):
    """Another push of the fleet's egress policy held the apply lock for longer than the wait: `holder` is its
    session as Postgres lists it (empty when it let go meanwhile, or is not visible to this role)."""

    def __init__(self, holder: dict[str, Any]) -> None:
        super().__init__(f"the egress policy's apply lock is held by {holder or 'a session no longer listed'}")
        self.holder = holder


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
        row = await self.pool.fetchrow(SELECT, change_id)
        return view(row) if row else None

    async def listed(self, status: str | None, limit: int) -> list[dict[str, Any]]:
        return [view(r) for r in await self.pool.fetch(LIST, status, limit)]

    @asynccontextmanager
    async def locked(self, change_id: str) -> AsyncIterator[tuple[asyncpg.Connection, dict[str, Any] | None]]:
        """The change row-locked for one transition; what is written on the connection commits together."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(LOCK, change_id)
            item = dict(row) if row else None
            if item and isinstance(item.get("summary"), str):
                item["summary"] = json.loads(item["summary"])
            yield conn, item

    @asynccontextmanager
    async def applying(self, wait_s: float | None) -> AsyncIterator[asyncpg.Connection | None]:
        """The fleet's apply lock held (on a connection of its own) for one push. `wait_s` None: tried once, None
        when another holds it (the reconcile skips its turn); else waited for at most `wait_s`, then ApplyBusy
        naming the session that holds it (a push that hangs never makes an approval hang with it)."""
        async with self.pool.acquire() as conn:
            if wait_s is None:
                if not await conn.fetchval(TRY_APPLY_LOCK, self.namespace):
                    yield None
                    return
            else:
                try:
                    await conn.execute(APPLY_LOCK, self.namespace, timeout=wait_s)
                except TimeoutError:
                    raise ApplyBusy(await self.holder()) from None
            try:
                yield conn
            finally:
                await conn.execute(APPLY_UNLOCK, self.namespace)

    async def holder(self) -> dict[str, Any]:
        """The session holding the fleet's apply lock ({} when none is listed)."""
        row = await self.pool.fetchrow(HOLDER, self.namespace, timeout=5)
        if row is None:
            return {}
        return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in dict(row).items()}
