"""The record's cost per batch and per checkpoint, on the real Postgres (issue 29), without weakening what it proves:
a consumer batch is written in five round trips (begin, the locks, one read of what the chains hold, one insert,
commit); a checkpoint does not verify again the signatures this process made and saw committed, but recomputes
every content hash and link from the stored rows, verifies every other signature, and a row changed after it was
recorded still blocks it."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from moe_audit_verify.keys import PublicKey
from moe_audit_verify.note import ED25519, NoteKey, raw
from moe_core.audit import entries
from moe_core.audit.checkpoints import Anchoring, ChainBroken, checkpoint, checkpoint_all
from moe_core.audit.signer import Signer
from moe_core.audit.store import AuditStore
from moe_core.audit.witness import WitnessClient
from tests.lineage.attacker import Attacker
from tests.lineage.chain_store import TENANT, TOPICS, results, store_for

pytestmark = pytest.mark.infra


async def test_a_batch_is_written_in_five_round_trips(infra: dict[str, str], audit_schema: str) -> None:
    statements: list[str] = []
    store = await store_for(infra["postgres"], audit_schema, Signer.ephemeral(), statements)
    rid = f"r-{uuid.uuid4().hex}"
    try:
        await store.append_many(results(f"r-{uuid.uuid4().hex}", 100, 1))  # the connection's first: types looked up
        batch = results(rid, 0, 4)
        for items, events in ((batch[:3], 6), (batch[1:], 2), (batch, 0)):  # new; partly redelivered; redelivered
            statements.clear()
            assert await store.append_many(items) == events
            await asyncio.sleep(0)  # the query logger's callbacks run soon after each statement
            kinds = [s.split()[0].upper() for s in statements]
            kinds = kinds[:kinds.index("COMMIT;") + 1]  # then the pool's reset of the connection it takes back
            assert kinds == ["BEGIN;", "SELECT", "SELECT", *(["INSERT"] if events else []), "COMMIT;"], kinds
            assert "pg_advisory_xact_lock" in statements[1] and "clock_timestamp()" in statements[2]
        chain = await store.pool.fetch('SELECT seq, kind, rseq, "offset" FROM audit_log WHERE seq > 3 ORDER BY seq')
        assert [(r["seq"], r["kind"], r["rseq"], r["offset"]) for r in chain] == [
            (3 * i + j + 4, *(("record", i + 1, i) if j == 0 else ("lineage", None, None)))
            for i in range(4) for j in range(3)]  # each record once, each event once, in one chain
    finally:
        await store.close()


def _count_verifications(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many Ed25519 verifications are made from now on (one counter)."""
    made = [0]
    real = PublicKey.verifies

    def counting(self: PublicKey, message: bytes, signature: str) -> bool:
        made[0] += 1
        return real(self, message, signature)

    monkeypatch.setattr(PublicKey, "verifies", counting)
    return made


async def _recorded(store: AuditStore, anchoring: Anchoring) -> int:
    """A checkpointed stretch, then 4 records and their 8 events since: the new chain's head."""
    rid = f"r-{uuid.uuid4().hex}"
    await store.append_many(results(rid, 0, 2))
    assert await checkpoint(store, TENANT, anchoring) is not None
    await store.append_many(results(rid, 2, 3))
    await store.append(*results(rid, 5, 1)[0])
    return 6 * 3


async def test_a_checkpoint_verifies_every_signature_but_the_ones_this_process_made(
        infra: dict[str, str], audit_schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    key = Ed25519PrivateKey.generate()
    signer = Signer(key)
    store = await store_for(infra["postgres"], audit_schema, signer)
    made = _count_verifications(monkeypatch)
    try:
        head = await _recorded(store, Anchoring(signer, None))
        assert made[0] == 0  # the first checkpoint's stretch was remembered too
        restarted = Signer(key)  # the same key, nothing remembered: every signature is verified
        assert (await checkpoint(store, TENANT, Anchoring(restarted, None), max_age=timedelta(0))).size == head
        assert made[0] == 12
        bounded = Signer(key, remembered=5)  # beyond the bound the oldest are forgotten, and verified
        bounded_store = await store_for(infra["postgres"], audit_schema, bounded)
        try:
            await bounded_store.append_many(results(f"r-{uuid.uuid4().hex}", 100, 4))
            assert (await checkpoint(bounded_store, TENANT, Anchoring(bounded, None))).size == head + 12
            assert made[0] == 12 + 7
        finally:
            await bounded_store.close()
    finally:
        await store.close()


Tamper = Callable[[Attacker, int], Awaitable[str]]


async def _payload_changed(who: Attacker, head: int) -> str:
    await who.execute("UPDATE {table} SET payload = replace(payload, 'answer 3', 'answer X') WHERE tenant_id=$1 AND "
                      "seq=$2", TENANT, head - 8)
    return rf"seq {head - 8} \({TOPICS.results}/0/3\): signature does not match"


async def _payload_changed_rechained(who: Attacker, head: int) -> str:
    await _payload_changed(who, head)
    await who.rechain()
    return rf"seq {head - 8} \({TOPICS.results}/0/3\): signature does not match"


async def _hash_changed(who: Attacker, head: int) -> str:
    await who.execute("UPDATE {table} SET hash = $3 WHERE tenant_id=$1 AND seq=$2", TENANT, head - 4, "f" * 64)
    return rf"seq {head - 4} \([^)]*\): its stored hash is not the chain's"


async def _signatures_swapped(who: Attacker, head: int) -> str:
    await who.execute("UPDATE {table} a SET signature = b.signature FROM {table} b WHERE a.tenant_id=$1 AND "
                      "b.tenant_id=$1 AND a.seq + b.seq = $2 AND a.seq IN ($3, $4)", TENANT, 2 * head - 3, head - 1,
                      head - 2)
    return rf"seq {head - 2} \([^)]*\): signature does not match"


async def _deleted_renumbered(who: Attacker, head: int) -> str:
    await who.execute("DELETE FROM {table} WHERE tenant_id=$1 AND seq=$2", TENANT, head - 5)
    await who.shift(head - 4, -1)
    await who.rechain()
    return rf"seq {head - 5}\.\.{head - 1} .*: renumbered: each was signed as its seq \+1"


async def _copy_inserted(who: Attacker, head: int) -> str:
    row = await who.row("seq=$2", head - 2)
    await who.shift(head - 1, 1)
    copy = {**dict(row), "seq": head - 1, "offset": None, "run_id": str(uuid.uuid4())}  # a copied signature
    await who.execute(f"INSERT INTO {{table}} ({', '.join(f'{chr(34)}{c}{chr(34)}' for c in copy)}) VALUES "
                      f"({', '.join(f'${i}' for i in range(1, len(copy) + 1))})", *copy.values())
    await who.rechain()
    return rf"seq {head - 1} \([^)]*\): signature does not match"


@pytest.mark.parametrize("outage", [False, True])
@pytest.mark.parametrize("tamper", [_payload_changed, _payload_changed_rechained, _hash_changed,
                                    _signatures_swapped, _deleted_renumbered, _copy_inserted])
async def test_a_row_changed_after_it_was_recorded_still_blocks_the_checkpoint(
        infra: dict[str, str], audit_schema: str, tamper: Tamper, outage: bool) -> None:
    """The entries since the last checkpoint were all signed and remembered by this process; one is changed (and
    the hashes recomputed, or not) before the next checkpoint, which refuses to sign the chain, as it does with
    nothing remembered. `outage`: the stretch was verified already, at a check whose checkpoint the witness could not
    cosign, and more entries are recorded after the change: the stretch kept as verified is not trusted once changed."""
    signer = Signer.ephemeral()
    store = await store_for(infra["postgres"], audit_schema, signer)
    conn = await asyncpg.connect(infra["postgres"])
    try:
        anchoring = Anchoring(signer, None)
        head = await _recorded(store, anchoring)
        if outage:
            anchoring.witness = _unreachable()
            assert (await checkpoint_all(store, anchoring, timedelta(hours=1)))[0] == []
            assert anchoring.verified[TENANT].size == head
        found = await tamper(Attacker(conn, audit_schema, TENANT), head)
        if outage:  # more entries since, so the next check starts from the kept stretch
            stored = await conn.fetchval(f'SELECT hash FROM "{audit_schema}".audit_log WHERE tenant_id=$1 AND seq=$2',
                                         TENANT, head)
            if stored != store.written[TENANT][1]:  # the head it wrote was changed: its next append may find that first
                found += "|entries were deleted from the database"
            await store.append_many(results(f"r-{uuid.uuid4().hex}", 50, 1))
            anchoring.witness = None
        with pytest.raises(ChainBroken, match=found):
            await checkpoint(store, TENANT, anchoring)
        assert await store.pool.fetchval("SELECT count(*) FROM audit_checkpoints") == 1
    finally:
        await conn.close()
        await store.close()


def _unreachable() -> WitnessClient:
    return WitnessClient("http://127.0.0.1:9", NoteKey("w", ED25519, raw(Ed25519PrivateKey.generate().public_key())),
                         timeout_s=1.0)


async def test_an_entry_is_verified_once_while_the_checkpoints_cannot_be_made(
        infra: dict[str, str], audit_schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over an outage of the witness (nothing signed, asked again at each interval) each entry's content is derived
    from its row and verified once, not again at every interval since the last checkpoint; the checkpoint made
    once the witness is back covers them all."""
    derived: Counter[int] = Counter()
    real = entries.content_of_row

    def counting(row: Any) -> dict[str, Any]:
        derived[row["seq"]] += 1
        return real(row)

    signer = Signer.ephemeral()
    store = await store_for(infra["postgres"], audit_schema, signer)
    anchoring = Anchoring(signer, None, witness=_unreachable())
    monkeypatch.setattr(entries, "content_of_row", counting)
    try:
        for i in range(3):
            await store.append_many(results(f"r-{uuid.uuid4().hex}", 10 * i, 2))
            made, refused = await checkpoint_all(store, anchoring, timedelta(hours=1))
            assert made == [] and "not witnessed" in refused[0]
        anchoring.witness = None
        await store.append_many(results(f"r-{uuid.uuid4().hex}", 40, 1))
        made, _ = await checkpoint_all(store, anchoring, timedelta(hours=1))
        assert [cp.size for cp in made] == [21]
        assert derived == Counter(range(1, 22))  # every entry once
    finally:
        await store.close()
