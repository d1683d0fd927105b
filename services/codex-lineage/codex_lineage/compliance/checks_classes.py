"""The data-class check: every request of the window whose tenant carries one of the listed classes (e.g.
personal) reached only the datasets and models its class allows (policy/data-classes.yaml), read from the
requests' OpenLineage events in the audit store.

The window holds every request of the last day (several lineage events each, ~1-2 kB): it is read with a cursor,
one request's events at a time, and only the tenants of the listed classes. Fetched whole, it cost codex-lineage
~127 MB at 5,600 requests in a soak (issue 52), at every evaluation."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from codex_lineage.compliance.outcome import Outcome, verdict
from codex_lineage.compliance.sources import Sources
from moe_core.audit.store import AuditStore
from moe_core.policy.classes import ClassBook, classify_request

# $2: the tenants the file puts in a listed class; $3: whether the default class is listed, for every tenant the
# file does not name ($4). "C" collation: the order Python's sorted() gives, so the findings shown are the first.
LINEAGE = """
SELECT tenant_id, response_id, body FROM audit_log
WHERE kind = 'lineage' AND response_id IS NOT NULL AND recorded_at >= now() - make_interval(hours => $1)
  AND (tenant_id = ANY($2::text[]) OR ($3 AND NOT tenant_id = ANY($4::text[])))
ORDER BY tenant_id COLLATE "C", response_id COLLATE "C", seq
"""
SHOWN = 20  # findings listed in the evidence (the count is whole)
PREFETCH = 500  # rows a cursor fetch brings


async def requests_of(store: AuditStore, policy: ClassBook, classes: set[str],
                      hours: float) -> AsyncIterator[tuple[str, str, list[dict[str, Any]]]]:
    """(tenant, response_id, its lineage events) of every request of the window whose tenant's class is listed,
    ordered by tenant and response id; one request's events in memory at a time."""
    listed = [t for t, c in policy.tenants.items() if c in classes]
    args = (hours, listed, policy.default_class in classes, list(policy.tenants))
    async with store.pool.acquire() as conn, conn.transaction(readonly=True):
        key: tuple[str, str] | None = None
        events: list[dict[str, Any]] = []
        async for row in conn.cursor(LINEAGE, *args, prefetch=PREFETCH):
            if (row["tenant_id"], row["response_id"]) != key:
                if key is not None:
                    yield key[0], key[1], events
                key, events = (row["tenant_id"], row["response_id"]), []
            events.append(json.loads(row["body"]))
        if key is not None:
            yield key[0], key[1], events


async def data_class_flow(src: Sources, params: dict[str, Any]) -> Outcome:
    """params: classes (the data classes to check, e.g. [personal]), hours (the window, default 24)."""
    if src.classes is None:
        return Outcome("fail", "no data-class file is in force", {})
    policy = src.classes()
    classes = set(params.get("classes") or ["personal"])
    hours = float(params.get("hours", 24))
    checked, flagged = 0, 0
    shown: list[dict[str, Any]] = []
    async for tenant, rid, events in requests_of(src.store, policy, classes, hours):
        checked += 1
        found = classify_request(policy, tenant, events)
        if found["findings"]:
            flagged += 1
            if len(shown) < SHOWN:
                shown.append({"tenant": tenant, "response_id": rid, "class": found["class"],
                              "findings": found["findings"]})
    evidence: dict[str, Any] = {"source": "the audit store's lineage events; the data-class file in force",
                                "classes": sorted(classes), "hours": hours, "requests": checked,
                                "allowed": {c: policy.allowed[c].model_dump() for c in sorted(classes)
                                            if c in policy.allowed}}
    if not checked:
        return Outcome("not_applicable", f"no request of a {'/'.join(sorted(classes))} tenant in the last "
                                         f"{hours:g} hours", evidence)
    evidence["flagged"] = flagged
    evidence["findings"] = shown
    return verdict(not flagged, f"{checked} requests reached only what their class allows",
                   f"{flagged} of {checked} requests reached a dataset or model their class does not "
                   "allow", evidence)
