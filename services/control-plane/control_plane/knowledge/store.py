"""Change sets of knowledge imports in Postgres: the bundle, its diff, its source document (when it names one),
the approvals (one row per principal and key: a unique index makes a second approval by the same principal
impossible, whichever of its keys it uses) and the decision. The tables are
made by the migrator role (moe_core.runtime.pg.ddl)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

# The three selects share their column list (constants joined once at import: no SQL is assembled per call).
_CHANGE_SET = (
    "SELECT cs.id, cs.tenant, cs.status, cs.importer_key, cs.importer_principal, cs.bundle_digest, cs.bundle, "
    "cs.diff, cs.domains, cs.approvals_required, cs.policy_digest, cs.created_at, cs.decided_at, cs.decided_by, "
    "cs.note, cs.result, cs.source_document, "
    "coalesce((SELECT json_agg(json_build_object('key', 'key:' || a.key_id, 'principal', a.principal_id, "
    "'at', a.approved_at, 'note', a.note) ORDER BY a.approved_at) "
    "FROM knowledge_approvals a WHERE a.change_set_id = cs.id), '[]') AS approvals "
    "FROM knowledge_change_sets cs "
)
SELECT_ONE = _CHANGE_SET + "WHERE cs.id = $1 AND cs.tenant = ANY($2::text[])"
SELECT_LOCKED = _CHANGE_SET + "WHERE cs.id = $1 AND cs.tenant = ANY($2::text[]) FOR UPDATE OF cs"
SELECT_LIST = (_CHANGE_SET + "WHERE cs.tenant = ANY($1::text[]) AND ($2::text IS NULL OR cs.status = $2) "
               "ORDER BY cs.created_at DESC, cs.id LIMIT $3")
INSERT = """
INSERT INTO knowledge_change_sets (id, tenant, status, importer_key, bundle_digest, bundle, diff, domains,
                                   approvals_required, policy_digest, decided_at, decided_by, result,
                                   importer_principal, source_document)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $9, $10,
        CASE WHEN $3 = 'applied' THEN now() END, $11, $12::jsonb, $13, $14::jsonb)
"""
APPROVE = """
INSERT INTO knowledge_approvals (change_set_id, key_id, principal_id, note) VALUES ($1, $2, $3, $4)
ON CONFLICT DO NOTHING
"""
PENDING = "SELECT count(*) FROM knowledge_change_sets WHERE status = 'pending'"
COUNT = ("SELECT count(DISTINCT coalesce(principal_id, 'sa-' || key_id)) FROM knowledge_approvals "
         "WHERE change_set_id = $1")
DECIDE = """
UPDATE knowledge_change_sets SET status = $2, decided_at = now(), decided_by = $3, note = $4, result = $5::jsonb
WHERE id = $1 AND status = 'pending'
"""


def _row(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    for name in ("bundle", "diff", "result", "approvals", "source_document"):
        if isinstance(out[name], str):
            out[name] = json.loads(out[name])
    out["domains"] = list(out["domains"])
    return out


class ChangeSets:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create(self, *, id: str, tenant: str, status: str, importer_key: str, importer_principal: str,
                     bundle: dict[str, Any],
                     diff: dict[str, Any], domains: list[str], approvals_required: int, policy_digest: str,
                     decided_by: str | None = None, result: dict[str, Any] | None = None,
                     source_document: dict[str, Any] | None = None) -> dict[str, Any]:
        await self.pool.execute(INSERT, id, tenant, status, importer_key, bundle["digest"], json.dumps(bundle),
                                json.dumps(diff), domains, approvals_required, policy_digest, decided_by,
                                None if result is None else json.dumps(result), importer_principal,
                                None if source_document is None else json.dumps(source_document))
        found = await self.get(id, [tenant])
        assert found is not None
        return found

    async def get(self, cs_id: str, tenants: list[str]) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(SELECT_ONE, cs_id, tenants)
        return _row(row) if row else None

    async def find(self, tenants: list[str], status: str | None, limit: int) -> list[dict[str, Any]]:
        return [_row(r) for r in await self.pool.fetch(SELECT_LIST, tenants, status, limit)]

    async def pending_count(self) -> int:
        """Change sets waiting for approval, all tenants (for the moe_knowledge_imports_pending gauge)."""
        return int(await self.pool.fetchval(PENDING))

    @asynccontextmanager
    async def locked(self, cs_id: str, tenants: list[str]) -> AsyncIterator[Locked]:
        """The change set, row-locked for one decision (approvals of one change set run one at a time).
        Everything done through the handle commits together, or not at all if the block raises."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(SELECT_LOCKED, cs_id, tenants)
            yield Locked(conn, cs_id, _row(row) if row else None)


class Locked:
    def __init__(self, conn: asyncpg.Connection, cs_id: str, item: dict[str, Any] | None) -> None:
        self.conn, self.id, self.item = conn, cs_id, item

    async def approve(self, key_id: str, principal_id: str, note: str) -> int:
        """Record the principal's approval (through one of its keys); the number of distinct principals so far."""
        await self.conn.execute(APPROVE, self.id, key_id, principal_id, note)
        return int(await self.conn.fetchval(COUNT, self.id))

    async def decide(self, status: str, actor: str, note: str, result: dict[str, Any] | None) -> None:
        await self.conn.execute(DECIDE, self.id, status, actor, note, None if result is None else json.dumps(result))
