"""Egress policy changes in Postgres (egress_policy_changes, migration `egress-changes`): one row per candidate
egress module, from its simulation (who, the module, the policy version it was compared with, the counts) through
its proposal to a second person's decision and the policy version the application made. Nothing here builds SQL at
run time."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

COLUMNS = ("SELECT id, candidate, module, policy_in_force, days, summary, status, simulated_principal, "
           "proposer_principal, note, decided_principal, decision_note, applied_version, created_at, proposed_at, "
           "decided_at FROM egress_policy_changes ")
INSERT = """
INSERT INTO egress_policy_changes (id, candidate, module, policy_in_force, days, summary, status, simulated_key,
                                   simulated_principal)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, 'simulated', $7, $8)
"""
SELECT = COLUMNS + "WHERE id = $1"
LOCK = "SELECT id, module, policy_in_force, status, proposer_principal, summary FROM egress_policy_changes " \
       "WHERE id = $1 FOR UPDATE"
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


def view(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    if isinstance(out.get("summary"), str):
        out["summary"] = json.loads(out["summary"])
    for name in ("created_at", "proposed_at", "decided_at"):
        out[name] = out[name].isoformat() if out.get(name) else None
    return {"object": "egress_policy.change", **out}


class EgressChanges:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def add_simulation(self, *, candidate: str, module: str, in_force: str, days: float,
                             summary: dict[str, Any], key_id: str, principal: str) -> str:
        change_id = f"esim-{uuid.uuid4().hex[:20]}"
        await self.pool.execute(INSERT, change_id, candidate, module, in_force, days, json.dumps(summary), key_id,
                                principal)
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
