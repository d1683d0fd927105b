"""codex-lineage's batches at low load: the broker holds its fetch for MOE_KAFKA_LINGER_MS (500) or until it has
LINGER_BYTES (moe_core.runtime.kafka_clients.linger_options), so records that trickle in are stored a few per
transaction
instead of one each (fewer transactions, fewer fetches), every one of them still recorded in its tenant's chain."""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import asyncpg
import httpx
import pytest

from moe_core.knowledge.graph.audit import audit_event
from tests.lineage.conftest import LineageFleet
from tests.support.namespaces import new_namespace

pytestmark = pytest.mark.infra
EVENTS = 40


def _batches(fleet: LineageFleet) -> tuple[float, float]:
    """(transactions, records) codex-lineage has stored batches of, from its /metrics."""
    text = httpx.get(f"{fleet.lineage}/metrics", timeout=30).text
    count = re.search(r"^moe_lineage_batch_records_count (\S+)$", text, re.M)
    total = re.search(r"^moe_lineage_batch_records_sum (\S+)$", text, re.M)
    return (float(count.group(1)) if count else 0.0, float(total.group(1)) if total else 0.0)


async def _recorded(dsn: str, schema: str, tenant: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(f'SELECT count(*) FROM "{schema}".audit_log WHERE tenant_id=$1 AND '
                                       "kind='record'", tenant))
    finally:
        await conn.close()


def test_records_that_trickle_in_are_stored_several_per_transaction(lineage_fleet: LineageFleet) -> None:
    tenant = new_namespace("linger")
    rid = f"r-{uuid.uuid4().hex[:8]}"
    events = [audit_event(None, actor="graph-ingest", action="reviewed", subject=f"s{i}", tenant=tenant,
                          response_id=rid) for i in range(EVENTS)]
    transactions, records = _batches(lineage_fleet)
    lineage_fleet.publish([(event, "audit") for event in events], "graph-ingest", spacing_s=0.005)
    deadline = time.monotonic() + 60
    while asyncio.run(_recorded(lineage_fleet.owner_dsn, lineage_fleet.schema, tenant)) < EVENTS:
        assert time.monotonic() < deadline, "the events were not all recorded"
        time.sleep(0.2)
    after_transactions, after_records = _batches(lineage_fleet)
    assert after_records - records >= EVENTS  # every event stored (and whatever else the fleet recorded meanwhile)
    assert after_transactions - transactions <= EVENTS / 4, (after_transactions - transactions, EVENTS)
