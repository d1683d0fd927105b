"""codex-lineage's batches while its own Postgres goes down (issue 49): a batch the store could not take is held
(it raises: FastStream rewinds the partitions and commits nothing), never dead-lettered and passed; once Postgres is
back the same batch is stored, and stored once when it comes again.

The outage is the one the chaos tier met in CI (tests/chaos/fleet/test_store_outages.py, postgres stopped), made
deterministic on a private Postgres (tests.support.chaos_infra): a shutdown is under way (SIGTERM, "smart": it
waits for one last session, held open here), the store's own connections are ended (AdminShutdownError) and every
new connection is refused with "the database system is shutting down" (CannotConnectNowError). Before the fix those
two errors were not transient: the batch was recorded one by one, each record dead-lettered and its offset
committed, so `replay verify` later named them missing. Costs a private Postgres (about 10 s)."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiokafka.structs import ConsumerRecord

from codex_lineage.holding import HELD, HeldBatches, Hold
from codex_lineage.lineage import Datasets, Lineage
from codex_lineage.recorder import Recorder
from moe_core.audit.signer import Signer
from moe_core.audit.store import AuditStore
from moe_core.contracts import TaskResult, Topics, deadline_in
from tests.support.chaos_infra import PrivateInfra

pytestmark = pytest.mark.infra
TOPICS = Topics.for_namespace("hold")
RECORDS = 6


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivateInfra]:
    infra = PrivateInfra(("postgres",))
    try:
        infra.up()
        yield infra
    finally:
        infra.close()


def _raws(rid: str) -> list[ConsumerRecord[bytes, bytes]]:
    now = int(datetime.now(UTC).timestamp() * 1000)
    out = []
    for i in range(RECORDS):
        value = TaskResult(response_id=rid, tenant_id="acme", deadline_at=deadline_in(60), task_id=f"t{i}",
                           category="general", content=f"answer {i}").model_dump_json().encode()
        out.append(ConsumerRecord(TOPICS.results, 0, 100 + i, now + i, 0, rid.encode(), value, None,
                                  len(rid), len(value), [("x-moe-producer", b"expert-worker")]))
    return out


async def _stored(dsn: str, schema: str, rid: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(f'SELECT count(*) FROM "{schema}".audit_log WHERE kind=\'record\' '
                                       "AND response_id=$1", rid))
    finally:
        await conn.close()


async def _shutting_down(infra: PrivateInfra, dsn: str) -> asyncpg.Connection:
    """A smart shutdown held open by the returned session: the others (the store's pool) ended, new ones refused."""
    last = await asyncpg.connect(dsn)
    pid = infra.pid("postgres")
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    await asyncio.sleep(0.5)  # the postmaster has the signal: new connections are refused from here on
    await last.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE pid <> pg_backend_pid() AND datname = current_database()")
    with pytest.raises(asyncpg.CannotConnectNowError):
        await asyncpg.connect(dsn)
    return last


async def test_a_batch_met_by_its_stores_shutdown_is_held_then_stored_once(private_postgres: PrivateInfra) -> None:
    dsn = private_postgres.endpoints()["postgres"]
    schema, rid = f"audit_h_{uuid.uuid4().hex[:10]}", f"r-{uuid.uuid4().hex[:8]}"
    store = await AuditStore.connect(dsn, schema, signer=Signer.ephemeral())
    lineage = Lineage(TOPICS, "hold", Datasets(kafka="kafka://k:9092", graph="neo4j://g:7687", chroma="chroma://c:8000"))
    recorder = Recorder(TOPICS, store, lineage)
    letters: list[tuple[Any, Exception]] = []

    async def dead_letter(raw: Any, exc: Exception) -> None:
        letters.append((raw, exc))

    batches = HeldBatches(recorder.record_batch, recorder.record, store.pool, dead_letter, Hold(0.05, 0.01))
    raws = _raws(rid)
    await batches.store(raws[:2])  # the store takes records
    last = await _shutting_down(private_postgres, dsn)
    try:
        with pytest.raises(HELD) as held:  # which store error it is depends on the moment
            await batches.store(raws)
        assert not letters, f"dead-lettered while the store was down: {letters}"
        assert batches.hold.held == 1, held.value
    finally:
        await last.close()  # the shutdown completes
    private_postgres.stop("postgres")
    private_postgres.up("postgres")
    await batches.store(raws)  # fetched again once Postgres is back: every record stored
    await batches.store(raws)  # and again (a redelivery): nothing twice
    assert not letters
    assert batches.hold.held == 0
    assert await _stored(dsn, schema, rid) == RECORDS
    await store.drop()
    await store.close()
