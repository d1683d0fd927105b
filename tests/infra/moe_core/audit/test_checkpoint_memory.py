"""A checkpoint's check of the entries since the last one holds one chunk in memory, whatever the stretch's length
(moe_core.audit.stretch; issue 52: codex-lineage's resident memory rose at every checkpoint of the soak, by the
stretch's rows), and finds what the whole stretch read at once finds, on the real Postgres. So does the Merkle tree of
the checkpoint: the leaves since the last one are read and folded one chunk at a time (moe_core.audit.tree), where
every leaf hash of the stretch was read at once (~250 bytes an entry: the rate times the interval, or a whole
outage's stretch)."""

from __future__ import annotations

import tracemalloc
import uuid
from typing import Any

import asyncpg
import pytest

from moe_audit_verify.merkle import CompactRange, consistency_proof, entry_leaf, root
from moe_audit_verify.segment import Checkpoint, verify_chain
from moe_core.audit import stretch, tree
from moe_core.audit.checkpoints import Anchoring, checkpoint
from moe_core.audit.entries import entry_of_row
from moe_core.audit.signer import Signer
from moe_core.audit.store import AuditStore
from moe_core.audit.tree import TreeKeeper, tree_of
from tests.lineage.attacker import Attacker
from tests.lineage.chain_store import TENANT, audit_schema_fixture, results, store_for  # noqa: F401

pytestmark = pytest.mark.infra
CHUNK = 30


class _Counting:
    """A connection whose fetches are counted by rows: the most one read held."""

    def __init__(self, conn: Any) -> None:
        self.conn, self.largest, self.reads = conn, 0, 0

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        rows = await self.conn.fetch(query, *args)
        self.largest, self.reads = max(self.largest, len(rows)), self.reads + 1
        return rows


async def _grow(store: AuditStore, records: int) -> None:
    rid = f"r-{uuid.uuid4().hex}"
    for first in range(0, records, 100):
        await store.append_many(results(rid, first, min(100, records - first)))


async def _since(store: AuditStore, first: int, anchor: str | None, signer: Signer) -> tuple[list[Any], _Counting]:
    async with store.pool.acquire() as conn:
        head = await conn.fetchval("SELECT max(seq) FROM audit_log WHERE tenant_id=$1", TENANT)
        counting = _Counting(conn)
        found = await stretch.verify_since(counting, TENANT, first, head, anchor, signer.verifier(), CHUNK)
    return found, counting


async def _whole(store: AuditStore, first: int, anchor: str | None, signer: Signer) -> list[Any]:
    rows = await store.pool.fetch("SELECT * FROM audit_log WHERE tenant_id=$1 AND seq >= $2 ORDER BY seq", TENANT,
                                  first)
    cps = [Checkpoint({"size": first - 1, "root": anchor}, "")] if anchor else []
    return verify_chain([entry_of_row(r) for r in rows], cps, signer.verifier(), TENANT, first, require_anchor=False)


async def test_a_long_stretch_is_read_one_chunk_at_a_time(infra: dict[str, str], audit_schema: str) -> None:
    signer = Signer.ephemeral()
    store = await store_for(infra["postgres"], audit_schema, signer)
    try:
        await _grow(store, 200)  # 600 entries: 20 chunks
        found, counting = await _since(store, 1, None, signer)
        assert found == []
        assert counting.largest == CHUNK and counting.reads == 20  # never the stretch at once: one chunk's rows
    finally:
        await store.pool.close()


@pytest.mark.parametrize("harm", ["change", "delete at a chunk's end", "delete at a chunk's start", "swap across",
                                  "renumber", "no key id"])
async def test_a_harmed_stretch_gives_the_whole_stretchs_findings(infra: dict[str, str], audit_schema: str,
                                                                  harm: str) -> None:
    signer = Signer.ephemeral()
    store = await store_for(infra["postgres"], audit_schema, signer)
    conn = await asyncpg.connect(infra["postgres"])
    attacker = Attacker(conn, audit_schema, TENANT)
    try:
        await _grow(store, 40)  # 120 entries; the check starts after a checkpoint of size 10
        anchor = await conn.fetchval(f'SELECT hash FROM "{audit_schema}".audit_log WHERE tenant_id=$1 AND seq=10',
                                     TENANT)
        if harm == "change":
            await attacker.execute("UPDATE {table} SET payload = replace(payload, 'answer', 'ANSWER') "
                                   "WHERE tenant_id=$1 AND seq=73", TENANT)  # a record (seq 1, 4, 7, ...)
        elif harm.startswith("delete"):
            seq = 10 + 2 * CHUNK if harm.endswith("end") else 11 + 2 * CHUNK
            await attacker.execute("DELETE FROM {table} WHERE tenant_id=$1 AND seq=$2", TENANT, seq)
        elif harm == "swap across":
            await attacker.swap(10 + CHUNK, 11 + CHUNK)
        elif harm == "no key id":
            await attacker.execute("UPDATE {table} SET key_id = NULL WHERE tenant_id=$1 AND seq=100", TENANT)
        else:  # a record deleted and the ones after it renumbered to close the gap
            await attacker.execute("DELETE FROM {table} WHERE tenant_id=$1 AND seq=45", TENANT)
            await attacker.shift(46, -1)
        whole = await _whole(store, 11, anchor, signer)
        found, _ = await _since(store, 11, anchor, signer)
        assert whole, harm  # the harm is a finding at all
        assert found == whole
    finally:
        await conn.close()
        await store.pool.close()


async def test_a_checkpoints_memory_does_not_grow_with_the_stretch(infra: dict[str, str], audit_schema: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The traced peak of checkpoint() grows by under 1 KB per entry from a stretch of 150 entries to one of 1,500
    (the chunk is 150): before, it held every row of the stretch (2.9 KB per entry, measured; CI on 27 November with
    the chunks: 0.52 MB for 150, 1.08 for 1,500, about 0.4 KB per entry)."""
    monkeypatch.setattr(stretch, "STRETCH_CHUNK", 150)
    signer = Signer.ephemeral()
    store = await store_for(infra["postgres"], audit_schema, signer)
    anchoring = Anchoring(signer, None)
    peaks = []
    try:
        for records in (50, 500):  # 150, then 1,500 entries since the last checkpoint
            await _grow(store, records)
            tracemalloc.start()
            try:
                base = tracemalloc.get_traced_memory()[0]
                assert await checkpoint(store, TENANT, anchoring) is not None
                peaks.append(tracemalloc.get_traced_memory()[1] - base)
            finally:
                tracemalloc.stop()
        # what each entry beyond the first 150 adds to the peak: the Merkle tree reads the leaf hashes since the last
        # checkpoint (tens of bytes each, with Python's overhead; moe_core.audit.tree), no row of the stretch at once
        # (2.9 KB each)
        per_entry = (peaks[1] - peaks[0]) / 1350
        assert per_entry < 1000, (f"peak {peaks[1] / 1e6:.2f} MB for 1,500 entries, {peaks[0] / 1e6:.2f} for 150: "
                                  f"{per_entry:.0f} bytes per entry")
    finally:
        await store.pool.close()


async def test_the_trees_leaves_since_the_last_checkpoint_are_read_one_chunk_at_a_time(
        infra: dict[str, str], audit_schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tree of a 1,500-entry stretch: no read holds more than a chunk's rows, it is the tree of every leaf (the
    checkpoint signs its root), and its traced peak is that of a 150-entry stretch's (within 40 bytes an entry: it
    held all the stretch's leaf hashes, ~250 bytes an entry, measured; ~6 now, alone). The least peak of three: in a
    busy session the loop's other tasks allocated during one measurement (CI: 40.6 bytes an entry, 6 alone)."""
    monkeypatch.setattr(tree, "TREE_CHUNK", 150)
    signer = Signer.ephemeral()
    store = await store_for(infra["postgres"], audit_schema, signer)
    peaks = []
    try:
        for records in (50, 500):  # 150, then 1,650 entries (1,500 since the first tree)
            await _grow(store, records)
            async with store.pool.acquire() as conn:
                head = await conn.fetchval("SELECT max(seq) FROM audit_log WHERE tenant_id=$1", TENANT)
                found = []
                for _ in range(3):  # the least of three: tracing sees the loop's other tasks too, which only add
                    counting = _Counting(conn)
                    tracemalloc.start()
                    try:
                        made = await tree_of(counting, TENANT, head, None, TreeKeeper())
                        found.append(tracemalloc.get_traced_memory()[1])
                    finally:
                        tracemalloc.stop()
                peaks.append(min(found))
            leaves = await store.pool.fetch("SELECT hash FROM audit_log WHERE tenant_id=$1 ORDER BY seq", TENANT)
            assert made.grown().root() == root([entry_leaf(r["hash"]) for r in leaves])
            assert counting.largest <= 150 and counting.reads == -(-head // 150)
        per_entry = (peaks[1] - peaks[0]) / 1500
        assert per_entry < 40, f"peak {peaks[1] / 1e3:.0f} kB for 1,650 leaves, {peaks[0] / 1e3:.0f} for 150"
    finally:
        await store.pool.close()


async def test_a_witness_proof_reads_the_leaves_since_one_chunk_at_a_time(
        infra: dict[str, str], audit_schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A witness's consistency proof from the last checkpoint (size 30) over 1,470 leaves since: no read holds more
    than a chunk, it is the proof of every leaf, and its traced peak is that of 180 leaves since (within 40 bytes an
    entry: it held every row and leaf hash of the stretch at once, ~120 bytes an entry traced; ~17 now, measured).
    The least peak of three, as above."""
    monkeypatch.setattr(tree, "TREE_CHUNK", 150)
    signer = Signer.ephemeral()
    store = await store_for(infra["postgres"], audit_schema, signer)
    peaks = []
    try:
        await _grow(store, 10)  # the last checkpoint's 30 entries
        for records in (70, 500):  # 180, then 1,470 entries since it: full chunks of 150 both times
            await _grow(store, records)
            leaves = [entry_leaf(r["hash"]) for r in await store.pool.fetch(
                "SELECT hash FROM audit_log WHERE tenant_id=$1 ORDER BY seq", TENANT)]
            made = tree.Tree(CompactRange.of(leaves[:30]), CompactRange.of(leaves))
            async with store.pool.acquire() as conn:
                found = []
                for _ in range(3):
                    counting = _Counting(conn)
                    tracemalloc.start()
                    try:
                        nodes = await tree.proof(counting, TENANT, made, 30)
                        found.append(tracemalloc.get_traced_memory()[1])
                    finally:
                        tracemalloc.stop()
                peaks.append(min(found))
            assert nodes == consistency_proof(leaves, 30)
            assert counting.largest <= 150
        per_entry = (peaks[1] - peaks[0]) / 1290
        assert per_entry < 40, f"peak {peaks[1] / 1e3:.0f} kB for 1,470 leaves since, {peaks[0] / 1e3:.0f} for 180"
    finally:
        await store.pool.close()
