"""The configuration changes as the signed record holds them: the audit events (config.*) codex-lineage recorded,
with their place in the `system` tenant's chain, so the Configuration page shows that each change is on the record,
not only that the control plane says it made it."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from moe_core.audit.store import AuditStore

RECORDED = """
SELECT tenant_seq, broker_ts, payload::jsonb AS event, hash
FROM audit_records
WHERE tenant_id = 'system' AND message_type = 'AuditEvent' AND (payload::jsonb ->> 'action') LIKE 'config.%'
ORDER BY tenant_seq DESC LIMIT $1
"""


async def recorded_changes(store: Callable[[], Awaitable[AuditStore]], limit: int) -> list[dict[str, Any]]:
    """The newest config.* audit events on the record (empty while the audit store is not set up)."""
    try:
        rows = await (await store()).pool.fetch(RECORDED, limit)
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        return []
    out = []
    for row in rows:
        event = row["event"] if isinstance(row["event"], dict) else json.loads(row["event"])
        details = event.get("details") or {}
        out.append({"seq": row["tenant_seq"], "at": row["broker_ts"].isoformat(), "action": event.get("action"),
                    "actor": event.get("actor"), "subject": event.get("subject"),
                    "principal": details.get("by_principal"), "change": details.get("change"),
                    "before": details.get("before"), "after": details.get("after"), "hash": row["hash"]})
    return out
