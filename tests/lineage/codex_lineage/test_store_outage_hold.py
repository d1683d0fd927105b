"""codex-lineage's batches while its own Postgres goes down (issue 49): a batch the store could not take is held
(it raises: FastStream rewinds the partitions and commits nothing), never dead-lettered and passed; once Postgres is
back the same batch is stored, and stored once when it comes again. A checkpoint whose INSERT met its Postgres stopping
is not published, and made once Postgres is back; one stored and half published when codex-lineage was killed is
found at its restart. Neither is taken for a checkpoint deleted from the database (the chaos tier met that: every
later request "MISSING checkpoint", the tenant refused for good).

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
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiokafka.structs import ConsumerRecord
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from codex_lineage.holding import HELD, HeldBatches, Hold
from codex_lineage.lineage import Datasets, Lineage
from codex_lineage.recorder import Recorder
from moe_core.audit.checkpoints import Anchoring, checkpoint_all, file_outlet, published_heads
from moe_core.audit.records import from_kafka, message_types
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


STORE_GONE = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)  # the connection lost, or refused


async def _checkpoint_all_once_up(store: AuditStore, anchoring: Anchoring) -> tuple[list[Any], list[str]]:
    """checkpoint_all as codex-lineage's loop calls it until the restarted store answers (its pool's connections
    were ended with the old server)."""
    for _ in range(40):
        try:
            return await checkpoint_all(store, anchoring, timedelta(hours=1))
        except STORE_GONE:
            await asyncio.sleep(0.25)
    return await checkpoint_all(store, anchoring, timedelta(hours=1))


class StoppingSigner(Signer):
    """codex-lineage's signer, which stops Postgres once armed: between a checkpoint's signing and its INSERT."""

    def __init__(self, infra: PrivateInfra) -> None:
        super().__init__(Ed25519PrivateKey.generate())
        self.infra, self.armed = infra, False

    def sign(self, message: bytes) -> str:
        if self.armed:
            self.armed = False
            self.infra.stop("postgres")
        return super().sign(message)


def _records_of(rid: str) -> list[Any]:
    return [record for r in _raws(rid) if (record := from_kafka(
        r.topic, r.partition, r.offset, r.timestamp, r.key, r.value, {k: v.decode() for k, v in r.headers},
        message_types(TOPICS))) is not None]


async def test_a_checkpoint_whose_insert_met_its_stores_stop_is_made_once_it_is_back_never_refused(
        private_postgres: PrivateInfra) -> None:
    """The INSERT meets the stopped store (whether it was kept is unknown): nothing is published, and once
    Postgres is back the next interval makes the checkpoint; the tenant is not refused (the chaos tier's 'MISSING
    checkpoint')."""
    dsn = private_postgres.endpoints()["postgres"]
    schema, rid = f"audit_c_{uuid.uuid4().hex[:10]}", f"r-{uuid.uuid4().hex[:8]}"
    signer = StoppingSigner(private_postgres)
    store = await AuditStore.connect(dsn, schema, signer=signer)
    records = _records_of(rid)
    await store.append_many([(r, []) for r in records[:3]])
    published: list[dict[str, Any]] = []

    async def outlet(record: dict[str, Any]) -> None:
        published.append(record)

    anchoring = Anchoring(signer, None, [outlet])
    signer.armed = True
    with pytest.raises(STORE_GONE):  # signed, then its INSERT meets the stopped store
        await checkpoint_all(store, anchoring, timedelta(hours=1))
    assert published == []  # a checkpoint the database may lack is never published
    private_postgres.up("postgres")
    made, refused = await _checkpoint_all_once_up(store, anchoring)
    assert (refused, [cp.body["size"] for cp in made]) == ([], [3])
    stored = await store.pool.fetch("SELECT size, signature FROM audit_checkpoints ORDER BY time")
    assert [(r["size"], r["signature"]) for r in stored] == [(3, published[0]["signature"])]
    await store.append_many([(r, []) for r in records[3:]])  # the chain grows: checkpointed on top of it
    made, refused = await checkpoint_all(store, anchoring, timedelta(hours=1))
    assert (refused, [cp.body["size"] for cp in made]) == ([], [RECORDS])
    assert [r["checkpoint"]["size"] for r in published] == [3, RECORDS]
    await store.drop()
    await store.close()


class Killed(BaseException):
    """codex-lineage's process ending where it stands (SIGKILL, its machine lost): nothing after it runs."""


async def test_a_codex_lineage_killed_while_publishing_a_checkpoint_goes_on_after_its_restart(
        private_postgres: PrivateInfra, tmp_path: Any) -> None:
    """Killed after the checkpoint file took a checkpoint and before the next outlet: the restarted codex-lineage
    (a new process: the file read again, nothing remembered) finds that checkpoint in the database and goes on.
    Before, a checkpoint was published first and stored last, and the restart read it as one deleted from the
    database ('the published checkpoint ... is no longer in the database: checkpoints were deleted'): the tenant
    refused for good."""
    dsn = private_postgres.endpoints()["postgres"]
    schema, rid = f"audit_k_{uuid.uuid4().hex[:10]}", f"r-{uuid.uuid4().hex[:8]}"
    signer = Signer.ephemeral()
    store = await AuditStore.connect(dsn, schema, signer=signer)
    records = _records_of(rid)
    await store.append_many([(r, []) for r in records[:3]])
    path = str(tmp_path / "checkpoints.jsonl")

    async def killed(record: dict[str, Any]) -> None:
        raise Killed

    with pytest.raises(Killed):
        await checkpoint_all(store, Anchoring(signer, None, [file_outlet(path), killed]), timedelta(hours=1))
    assert [int(h["size"]) for h in published_heads(path).values()] == [3]
    restarted = AuditStore(store.pool, store.schema, signer)
    anchoring = Anchoring(signer, None, [file_outlet(path)], published_heads(path))
    made, refused = await checkpoint_all(restarted, anchoring, timedelta(hours=1))
    assert (refused, made) == ([], [])  # the killed one's checkpoint of size 3 is the tenant's newest
    await restarted.append_many([(r, []) for r in records[3:]])
    made, refused = await checkpoint_all(restarted, anchoring, timedelta(hours=1))
    assert (refused, [cp.body["size"] for cp in made]) == ([], [RECORDS])
    await store.drop()
    await store.close()


async def test_a_checkpoint_the_topic_could_not_take_is_still_in_the_file(private_postgres: PrivateInfra,
                                                                        tmp_path: Any) -> None:
    """The first outlet (the checkpoint topic, its broker away) fails: the file still takes the checkpoint, which is
    stored; the next interval has nothing to refuse."""
    dsn = private_postgres.endpoints()["postgres"]
    schema, rid = f"audit_t_{uuid.uuid4().hex[:10]}", f"r-{uuid.uuid4().hex[:8]}"
    signer = Signer.ephemeral()
    store = await AuditStore.connect(dsn, schema, signer=signer)
    await store.append_many([(r, []) for r in _records_of(rid)[:3]])
    path = str(tmp_path / "checkpoints.jsonl")

    async def unreachable(record: dict[str, Any]) -> None:
        raise ConnectionRefusedError("the broker is away")

    anchoring = Anchoring(signer, None, [unreachable, file_outlet(path)])
    with pytest.raises(ConnectionRefusedError):
        await checkpoint_all(store, anchoring, timedelta(hours=1))
    assert [int(h["size"]) for h in published_heads(path).values()] == [3]
    assert await store.pool.fetchval("SELECT count(*) FROM audit_checkpoints") == 1
    assert await checkpoint_all(store, anchoring, timedelta(hours=1)) == ([], [])
    await store.drop()
    await store.close()
