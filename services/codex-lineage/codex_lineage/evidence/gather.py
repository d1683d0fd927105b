"""What a bundle holds, read from the audit store: the stretches of the tenants' chains between signed checkpoints.

A period: from just after the last checkpoint made at or before `since` (or the chain's start) to the first one
made at or after `until`. A request: per tenant its entries are in, from the last checkpoint before its first
entry to the first one covering its last. When no checkpoint closes a stretch yet, `close` makes one now."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from moe_core.audit.records import iso

Close = Callable[[str], Awaitable[Any]]  # tenant -> the checkpoint row made now


class ExportError(Exception):
    """Nothing (or nothing verifiable) to export: the reason, for the operator; `status` for the API."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Stretch:
    tenant: str
    first_seq: int
    last_seq: int
    rows: list[Any]  # audit_log rows first_seq..last_seq
    checkpoints: list[Any]  # audit_checkpoints rows from the anchoring one to the closing one
    in_period: int = 0


async def period_stretch(pool: Any, tenant: str, since: datetime, until: datetime, close: Close) -> Stretch:
    if until <= since:
        raise ExportError("--until must be after --since")
    span = await pool.fetchrow("SELECT count(*) AS n, min(seq) AS lo FROM audit_log WHERE tenant_id=$1 AND "
                               "recorded_at >= $2 AND recorded_at < $3", tenant, since, until)
    if not span["n"]:
        if not await pool.fetchval("SELECT 1 FROM audit_log WHERE tenant_id=$1 LIMIT 1", tenant):
            raise ExportError(f"no audit record of tenant {tenant!r} at all (unknown tenant?)", 404)
        raise ExportError(f"tenant {tenant!r} has no audit record between {iso(since)} and {iso(until)}", 404)
    if until > await pool.fetchval("SELECT clock_timestamp()"):
        raise ExportError(f"the period has not ended yet (--until {iso(until)} is in the future)")
    start = await pool.fetchrow("SELECT * FROM audit_checkpoints WHERE tenant_id=$1 AND time <= $2 AND size < $3 "
                                "ORDER BY time DESC LIMIT 1", tenant, since, span["lo"])
    closing = await pool.fetchrow("SELECT * FROM audit_checkpoints WHERE tenant_id=$1 AND time >= $2 "
                                  "ORDER BY time LIMIT 1", tenant, until)
    if closing is None:
        closing = await close(tenant)
    first = start["size"] + 1 if start else 1
    rows = await pool.fetch("SELECT * FROM audit_log WHERE tenant_id=$1 AND seq >= $2 AND seq <= $3 ORDER BY seq",
                            tenant, first, closing["size"])
    checkpoints = await pool.fetch("SELECT * FROM audit_checkpoints WHERE tenant_id=$1 AND time >= $2 AND time <= $3 "
                                   "ORDER BY time", tenant, start["time"] if start else since - timedelta(days=36500),
                                   closing["time"])
    return Stretch(tenant, first, closing["size"], list(rows), list(checkpoints), span["n"])


async def request_stretches(pool: Any, response_id: str, close: Close) -> list[Stretch]:
    spans = await pool.fetch("SELECT tenant_id, min(seq) AS lo, max(seq) AS hi FROM audit_log WHERE response_id=$1 "
                             "GROUP BY tenant_id ORDER BY tenant_id", response_id)
    if not spans:
        raise ExportError(f"no audit record of request {response_id!r}", 404)
    out = []
    for span in spans:
        tenant = span["tenant_id"]
        before = await pool.fetchrow("SELECT * FROM audit_checkpoints WHERE tenant_id=$1 AND size < $2 "
                                     "ORDER BY size DESC, time DESC LIMIT 1", tenant, span["lo"])
        after = await pool.fetchrow("SELECT * FROM audit_checkpoints WHERE tenant_id=$1 AND size >= $2 "
                                    "ORDER BY time LIMIT 1", tenant, span["hi"])
        if after is None:
            after = await close(tenant)
        first = before["size"] + 1 if before else 1
        rows = await pool.fetch("SELECT * FROM audit_log WHERE tenant_id=$1 AND seq >= $2 AND seq <= $3 "
                                "ORDER BY seq", tenant, first, after["size"])
        checkpoints = await pool.fetch(
            "SELECT * FROM audit_checkpoints WHERE tenant_id=$1 AND size >= $2 AND size <= $3 AND time <= $4 "
            "ORDER BY time", tenant, first - 1, after["size"], after["time"])
        out.append(Stretch(tenant, first, after["size"], list(rows), list(checkpoints)))
    return out
