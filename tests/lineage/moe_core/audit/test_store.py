"""The audit store on the real Postgres: batches, single records and their lineage events extend one signed
chain per tenant, a redelivered record is stored once, checkpoints are timestamped by the real TSA, and
verification passes until a row is changed."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from codex_lineage.lineage import Datasets, Lineage
from codex_lineage.recorder import Recorder, extra_client
from moe_audit_verify.segment import Trust
from moe_audit_verify.timestamps import TsaChain
from moe_core.audit.checkpoints import Anchoring, ChainBroken, checkpoint, file_outlet, published_heads
from moe_core.audit.records import from_kafka, message_types
from moe_core.audit.signer import Signer
from moe_core.audit.store import AuditStore
from moe_core.audit.tsa import TsaClient
from moe_core.contracts import TaskResult, Topics, deadline_in

pytestmark = pytest.mark.infra
TOPICS = Topics.for_namespace("store")
SIGNER = Signer.ephemeral()


@pytest.fixture
async def store(infra: dict[str, str]) -> AsyncIterator[AuditStore]:
    audit = await AuditStore.connect(infra["postgres"], f"audit_t_{uuid.uuid4().hex[:10]}", signer=SIGNER)
    yield audit
    await audit.drop()
    await audit.close()


def _records(rid: str, first_offset: int, n: int) -> list:  # type: ignore[type-arg]
    now = int(datetime.now(UTC).timestamp() * 1000)
    out = []
    for i in range(n):
        result = TaskResult(response_id=rid, tenant_id="acme", deadline_at=deadline_in(60), task_id=f"t{i}",
                            category="general", content=f"answer {i}")
        out.append(from_kafka(TOPICS.results, 0, first_offset + i, now + i, rid.encode(),
                              result.model_dump_json().encode(), {"x-moe-producer": "expert-worker"},
                              message_types(TOPICS)))
    return out


async def test_batches_single_records_and_events_form_one_signed_chain(store: AuditStore, tsa: dict[str, str],
                                                                      tmp_path: Path) -> None:
    rid = f"r-{uuid.uuid4().hex}"
    first, second = _records(rid, 0, 3), _records(rid, 3, 2)
    event = {"run": {"runId": str(uuid.uuid4())}, "eventType": "START", "eventTime": "2026-01-01T00:00:00Z",
             "job": {"namespace": "n", "name": "j"}}
    assert await store.append_many([(r, [event] if i == 0 else []) for i, r in enumerate(first)]) == 1
    assert await store.append(second[0]) == (True, 0)
    assert await store.append_many([(first[1], [event]), (second[1], [])]) == 0  # a redelivery is stored once
    assert [r.offset for r in await store.records(rid)] == [0, 1, 2, 3, 4]
    chain = await store.pool.fetch("SELECT seq, kind, rseq FROM audit_log WHERE tenant_id='acme' ORDER BY seq")
    assert [(r["seq"], r["kind"], r["rseq"]) for r in chain] == [
        (1, "record", 1), (2, "lineage", None), (3, "record", 2), (4, "record", 3), (5, "record", 4),
        (6, "record", 5)]  # one chain: the records and the lineage event, in the order they were stored
    trust = Trust(SIGNER.public, TsaChain(Path(tsa["chain"]).read_bytes()))
    assert await store.verify(rid, trust) == {  # nothing wrong, but not yet covered by a checkpoint
        "verified": False, "records": 5, "anchored": False, "witnessed": None, "problems": [],
        "missing": ["checkpoint: not yet covered by a signed checkpoint (one follows within "
                    "MOE_AUDIT_CHECKPOINT_INTERVAL_S)"]}
    anchoring = Anchoring(SIGNER, TsaClient(tsa["url"], trust.tsa), [file_outlet(str(tmp_path / "cp.jsonl"))])
    made = await checkpoint(store, "acme", anchoring)
    assert made is not None and (made.size, made.timestamp is not None) == (6, True)
    assert await checkpoint(store, "acme", anchoring) is None  # nothing new: no second checkpoint
    assert json.loads((tmp_path / "cp.jsonl").read_text())["checkpoint"] == made.body
    assert await store.verify(rid, trust) == {"verified": True, "records": 5, "anchored": True, "witnessed": None,
                                              "missing": [], "problems": []}
    await store.pool.execute("UPDATE audit_log SET payload = replace(payload, 'answer 2', 'answer X') "
                             "WHERE response_id = $1", rid)
    changed = await store.verify(rid, trust)
    assert changed["verified"] is False
    assert changed["problems"][0] == {"record": f"seq 4 ({TOPICS.results}/0/2)", "problem": (
        "signature does not match: changed after codex-lineage signed it, or inserted (never signed by "
        "codex-lineage)")}
    await store.pool.execute("UPDATE audit_log SET hash = $1 WHERE tenant_id = 'acme' AND seq = 6", "f" * 64)
    with pytest.raises(ChainBroken, match=r"no longer has the (hash it signed|root it published)"):  # never signed
        await checkpoint(store, "acme", anchoring, max_age=timedelta(0))
    assert await store.verify(rid, "no public key") == {
        "verified": False, "records": 5, "anchored": False, "witnessed": False, "missing": ["the public key"],
        "problems": [{"record": "verification", "problem": "no public key"}]}


async def test_a_chain_cut_back_below_its_published_checkpoint_is_never_signed_again(store: AuditStore,
                                                                                       tmp_path: Path) -> None:
    """An insider's truncation (found in a trial): the newest entries deleted together with their checkpoint rows.
    The stored chain verifies from the cut, so without the published file codex-lineage would sign it anew and
    number new entries from the cut; with it (read at start) it refuses until an operator looks."""
    rid = f"r-{uuid.uuid4().hex}"
    await store.append_many([(r, []) for r in _records(rid, 0, 4)])
    published = tmp_path / "cp.jsonl"
    made = await checkpoint(store, "acme", Anchoring(SIGNER, None, [file_outlet(str(published))]))
    assert made is not None and made.size == 4
    await store.pool.execute("DELETE FROM audit_log WHERE tenant_id = 'acme' AND seq > 2")
    await store.pool.execute("DELETE FROM audit_checkpoints WHERE tenant_id = 'acme'")
    restarted = Anchoring(SIGNER, None, [file_outlet(str(published))], published_heads(str(published)))
    assert restarted.published["acme"]["size"] == 4
    store = AuditStore(store.pool, store.schema, SIGNER)  # restarted: nothing remembered of what it wrote
    with pytest.raises(ChainBroken, match=r"size 4\) is beyond the stored chain's head \(2\): entries were deleted"):
        await checkpoint(store, "acme", restarted)
    await store.append_many([(r, []) for r in _records(rid, 10, 3)])  # new entries 3..5 where 3..4 were
    with pytest.raises(ChainBroken, match="no longer has the root it published"):
        await checkpoint(store, "acme", restarted)
    assert len(published.read_text().splitlines()) == 1  # nothing signed over the cut
    store = AuditStore(store.pool, store.schema, SIGNER)
    unaware = await checkpoint(store, "acme", Anchoring(SIGNER, None, []))  # what it did before: a forked head
    assert unaware is not None and unaware.size == 5


async def test_a_configured_openlineage_transport_gets_every_new_event(store: AuditStore, tmp_path: Path) -> None:
    """MOE_LINEAGE_TRANSPORT goes to openlineage-python's own transport factory (here `file`); events are
    emitted once, when they are new in the store."""
    log = tmp_path / "lineage.jsonl"
    client = extra_client(json.dumps({"type": "file", "log_file_path": str(log), "append": True}))
    lineage = Lineage(TOPICS, "moe-sovereign", Datasets("kafka://k:9092", "neo4j://n:7687", "chroma://c:8000"))
    recorder = Recorder(TOPICS, store, lineage, client)
    records = _records(f"r-{uuid.uuid4().hex}", 0, 2)
    await recorder.write_batch(records)
    await recorder.write_batch(records)  # redelivered: nothing new, nothing emitted again
    emitted = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["job"]["name"], e["eventType"]) for e in emitted] == [("expert-worker.expert", "START"),
                                                                     ("expert-worker.expert", "COMPLETE")] * 2
    with pytest.raises(ValueError, match="type"):
        extra_client('{"url": "http://marquez:5000"}')
