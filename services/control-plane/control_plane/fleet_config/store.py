"""The fleet configuration's changes in Postgres (`fleet_config`: per fleet, MOE_TOPIC_NAMESPACE, the overlay in
force and its version; `fleet_config_changes`: every proposed change) and the overlay published into Redis for the
stages and the edge (moe_core.llm.inference.live). Each apply and each publish holds the fleet's `fleet_config` row
lock, so two control-plane replicas leave the later version in Redis, never an older one."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
from redis.asyncio import Redis

from moe_core.llm.inference.live import FleetOverrides, live_key

ENSURE = """
INSERT INTO fleet_config (namespace, version, overlay, changed_by) VALUES ($1, 0, '{}'::jsonb, 'environment')
ON CONFLICT (namespace) DO NOTHING
"""
CURRENT = "SELECT version, overlay, changed_at, changed_by FROM fleet_config WHERE namespace = $1 FOR UPDATE"
READ = "SELECT version, overlay, changed_at, changed_by FROM fleet_config WHERE namespace = $1"
SAVE = """
UPDATE fleet_config SET version = $2, overlay = $3::jsonb, changed_at = now(), changed_by = $4 WHERE namespace = $1
"""
PROPOSE = """
INSERT INTO fleet_config_changes (id, section, name, value, before_shown, after_shown, status, approvals_required,
                                  proposed_by, proposed_key, reason, namespace)
VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb, 'pending', $7, $8, $9, $10, $11)
RETURNING *
"""
ONE = "SELECT * FROM fleet_config_changes WHERE id = $1 AND namespace = $2"
ONE_LOCKED = "SELECT * FROM fleet_config_changes WHERE id = $1 AND namespace = $2 FOR UPDATE"
APPROVE = "UPDATE fleet_config_changes SET approvals = approvals || $2::jsonb WHERE id = $1 RETURNING *"
DECIDE = """
UPDATE fleet_config_changes SET status = $2, decided_at = now(), version = $3, value = $4::jsonb
WHERE id = $1 AND status = 'pending' AND namespace = $5
RETURNING *
"""
RECENT = "SELECT * FROM fleet_config_changes WHERE namespace = $1 ORDER BY created_at DESC LIMIT $2"


def _overlay(row: asyncpg.Record | None) -> FleetOverrides:
    if row is None:
        return FleetOverrides()
    raw = row["overlay"]
    data = dict(json.loads(raw) if isinstance(raw, str) else raw)
    return FleetOverrides.model_validate({**data, "version": row["version"], "changed_at": row["changed_at"],
                                          "changed_by": row["changed_by"]})


def change_of(row: asyncpg.Record) -> dict[str, Any]:
    """A change as the API shows it (its value, which may hold a server's API key, never)."""
    def js(value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    return {"id": row["id"], "section": row["section"], "name": row["name"], "status": row["status"],
            "before": js(row["before_shown"]), "after": js(row["after_shown"]),
            "approvals_required": row["approvals_required"], "approvals": js(row["approvals"]),
            "proposed_by": row["proposed_by"], "proposed_key": row["proposed_key"], "reason": row["reason"],
            "created_at": row["created_at"].isoformat(),
            "decided_at": row["decided_at"].isoformat() if row["decided_at"] else None, "version": row["version"]}


class FleetConfigStore:
    def __init__(self, pool: asyncpg.Pool, redis: Redis, namespace: str) -> None:
        self.pool = pool
        self.redis = redis
        self.namespace = namespace

    async def overlay(self) -> FleetOverrides:
        return _overlay(await self.pool.fetchrow(READ, self.namespace))

    async def recent(self, limit: int) -> list[dict[str, Any]]:
        return [change_of(r) for r in await self.pool.fetch(RECENT, self.namespace, limit)]

    async def one(self, change_id: str) -> asyncpg.Record | None:
        return await self.pool.fetchrow(ONE, change_id, self.namespace)

    async def propose(self, section: str, name: str, value: Any, shown: tuple[Any, Any], required: int,
                      by: tuple[str, str], reason: str) -> asyncpg.Record:
        """A pending change (applied by `apply` now or once approved). by: (principal, key id)."""
        row = await self.pool.fetchrow(PROPOSE, f"cfg-{uuid.uuid4().hex[:16]}", section, name, json.dumps(value),
                                       json.dumps(shown[0]), json.dumps(shown[1]), required, by[0], by[1], reason,
                                       self.namespace)
        assert row is not None
        return row

    async def approve(self, change_id: str, approval: dict[str, Any]) -> asyncpg.Record | None:
        """The approval added under the change's row lock (None: no longer pending, or this principal's already)."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(ONE_LOCKED, change_id, self.namespace)
            given = json.loads(row["approvals"]) if row and isinstance(row["approvals"], str) else (
                row["approvals"] if row else [])
            if row is None or row["status"] != "pending" or any(
                    a.get("principal") == approval["principal"] for a in given):
                return None
            return await conn.fetchrow(APPROVE, change_id, json.dumps([approval]))

    async def reject(self, change_id: str) -> asyncpg.Record | None:
        """Rejected (its value cleared); None: no longer pending."""
        return await self.pool.fetchrow(DECIDE, change_id, "rejected", None, None, self.namespace)

    async def apply(self, change_id: str, changed_by: str,
                    merge: Any) -> tuple[asyncpg.Record, FleetOverrides]:
        """The pending change laid onto the overlay in force, as a new version (merge(overlay, change) -> the new
        overlay, raising to refuse); the value is kept no longer than the overlay needs it (cleared here)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(ENSURE, self.namespace)
            overlay = _overlay(await conn.fetchrow(CURRENT, self.namespace))
            change = await conn.fetchrow(ONE_LOCKED, change_id, self.namespace)
            if change is None or change["status"] != "pending":
                raise LookupError(change_id)
            new = merge(overlay, change).model_copy(update={"version": overlay.version + 1})
            body = new.model_dump(mode="json", exclude={"version", "changed_at", "changed_by"})
            await conn.execute(SAVE, self.namespace, new.version, json.dumps(body), changed_by)
            row = await conn.fetchrow(DECIDE, change_id, "applied", new.version, None, self.namespace)
            assert row is not None
        await self.publish()
        return row, new

    async def publish(self) -> int:
        """The overlay in force into Redis (after each change, and at start); its version."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(ENSURE, self.namespace)
            row = await conn.fetchrow(CURRENT, self.namespace)  # the row's lock: one publish at a time, the latest wins
            overlay = _overlay(row)
            await self.redis.set(live_key(self.namespace), overlay.model_dump_json())
        return overlay.version
