"""A checkpoint's Merkle tree is the last checkpoint's compact range extended by the leaves since
(moe_core.audit.tree), on the real Postgres: the range stored with each checkpoint and its signed root are those of
every leaf recomputed; a restarted codex-lineage resumes from the stored range without reading the leaves below it,
and not from one changed in the database; an entry changed or deleted below the last checkpoint is never signed over
and is found when the leaves are read again (every MOE_AUDIT_TREE_RECHECK_S)."""

from __future__ import annotations

import base64
import json
import uuid

import asyncpg
import pytest

from moe_audit_verify.merkle import CompactRange, consistency_proof, entry_leaf, root
from moe_core.audit.checkpoints import Anchoring, ChainBroken, checkpoint
from moe_core.audit.signer import Signer
from moe_core.audit.store import AuditStore
from moe_core.audit.tree import Tree, TreeBroken, TreeKeeper, proof, tree_of
from tests.lineage.attacker import Attacker
from tests.lineage.chain_store import TENANT, audit_schema_fixture, results, store_for  # noqa: F401

pytestmark = pytest.mark.infra


async def _grow(store: AuditStore, records: int) -> None:
    """`records` records (3 entries each) at Kafka offsets never used before (a record is stored once per offset)."""
    first = await store.pool.fetchval("SELECT count(*) FROM audit_log WHERE tenant_id=$1", TENANT)
    await store.append_many(results(f"r-{uuid.uuid4().hex}", 1000 + first, records))


async def _leaves(store: AuditStore) -> list[bytes]:
    rows = await store.pool.fetch("SELECT hash FROM audit_log WHERE tenant_id=$1 ORDER BY seq", TENANT)
    return [entry_leaf(r["hash"]) for r in rows]


async def _newest(store: AuditStore) -> asyncpg.Record:
    return await store.pool.fetchrow("SELECT size, body, tree_range FROM audit_checkpoints WHERE tenant_id=$1 "
                                     "ORDER BY time DESC LIMIT 1", TENANT)


def _anchoring(signer: Signer, recheck_s: float = 3600.0) -> Anchoring:
    """codex-lineage's anchoring as a (re)started process has it: nothing kept of any tree."""
    return Anchoring(signer, None, trees=TreeKeeper(recheck_s=recheck_s))


async def _assert_full_tree(store: AuditStore) -> None:
    """The newest checkpoint's stored range and signed root are those of every leaf up to its size."""
    row, leaves = await _newest(store), await _leaves(store)
    upto = leaves[:row["size"]]
    assert bytes(row["tree_range"]) == CompactRange.of(upto).encoded()
    assert base64.b64decode(json.loads(row["body"])["tree_root"]) == root(upto)


async def test_the_kept_and_the_stored_range_make_the_tree_every_leaf_makes(infra: dict[str, str],
                                                                          audit_schema: str) -> None:
    signer = Signer.ephemeral()
    store = await store_for(infra["postgres"], audit_schema, signer)
    try:
        running = _anchoring(signer)
        for records in (7, 30, 1, 64):  # 3 entries a record: sizes 21, 111, 114, 306 (odd and even subtrees)
            await _grow(store, records)
            assert await checkpoint(store, TENANT, running) is not None
            await _assert_full_tree(store)
        assert running.trees.full_reads == 0  # every checkpoint extended the last one's range
        restarted = _anchoring(signer)
        await _grow(store, 5)
        assert await checkpoint(store, TENANT, restarted) is not None
        await _assert_full_tree(store)
        assert restarted.trees.full_reads == 0  # resumed from the stored range: no leaf below it read
    finally:
        await store.pool.close()


async def test_a_stored_range_changed_in_the_database_is_not_resumed(infra: dict[str, str],
                                                                     audit_schema: str) -> None:
    signer = Signer.ephemeral()
    store = await store_for(infra["postgres"], audit_schema, signer)
    conn = await asyncpg.connect(infra["postgres"])
    try:
        await _grow(store, 9)
        assert await checkpoint(store, TENANT, _anchoring(signer)) is not None
        forged = CompactRange.of([entry_leaf("00" * 32)] * 27).encoded()  # a range of the right size, another root
        await conn.execute(f'UPDATE "{audit_schema}".audit_checkpoints SET tree_range=$1 WHERE tenant_id=$2', forged,
                           TENANT)
        restarted = _anchoring(signer)
        await _grow(store, 4)
        assert await checkpoint(store, TENANT, restarted) is not None
        assert restarted.trees.full_reads == 1  # its root is not the signed one: every leaf read instead
        await _assert_full_tree(store)
    finally:
        await conn.close()
        await store.pool.close()


@pytest.mark.parametrize("harm", ["change", "delete"])
async def test_an_entry_harmed_below_the_last_checkpoint_is_not_signed_over_and_is_found_when_read_again(
        infra: dict[str, str], audit_schema: str, harm: str) -> None:
    signer = Signer.ephemeral()
    store = await store_for(infra["postgres"], audit_schema, signer)
    conn = await asyncpg.connect(infra["postgres"])
    attacker = Attacker(conn, audit_schema, TENANT)
    try:
        running = _anchoring(signer)
        await _grow(store, 10)  # 30 entries
        assert await checkpoint(store, TENANT, running) is not None
        signed = await _leaves(store)
        if harm == "change":  # below the last checkpoint, and not the entry at its size (checked at each one)
            await attacker.execute("UPDATE {table} SET hash=$2 WHERE tenant_id=$1 AND seq=5", TENANT, "ab" * 32)
        else:
            await attacker.execute("DELETE FROM {table} WHERE tenant_id=$1 AND seq=5", TENANT)
        await _grow(store, 2)
        made = await checkpoint(store, TENANT, running)  # the range kept, the recheck not due
        assert made is not None
        since = [entry_leaf(r["hash"]) for r in await store.pool.fetch(
            "SELECT hash FROM audit_log WHERE tenant_id=$1 AND seq > 30 ORDER BY seq", TENANT)]
        assert base64.b64decode(made.body["tree_root"]) == root(signed + since)  # the leaves as they were signed
        running.trees.recheck_s = 0.0
        await _grow(store, 2)
        found = "no longer make the Merkle root it signed" if harm == "change" else "entries were deleted"
        with pytest.raises(ChainBroken, match=found):
            await checkpoint(store, TENANT, running)
        with pytest.raises(ChainBroken, match=found):  # a restarted process with the default reads every leaf first
            await checkpoint(store, TENANT, _anchoring(signer, recheck_s=0.0))
    finally:
        await conn.close()
        await store.pool.close()


async def test_a_witness_proof_over_leaves_changed_after_the_tree_was_folded_is_refused(
        infra: dict[str, str], audit_schema: str) -> None:
    """The leaves since the last checkpoint are not kept with the tree (one chunk's memory): a witness's proof reads
    them again, gives the proof of every leaf, and refuses leaves that no longer make the tree about to be signed."""
    signer = Signer.ephemeral()
    store = await store_for(infra["postgres"], audit_schema, signer)
    conn = await asyncpg.connect(infra["postgres"])
    try:
        await _grow(store, 10)  # 30 entries
        async with store.pool.acquire() as held:
            made = await tree_of(held, TENANT, 30, None, TreeKeeper())
        assert await proof(store.pool, TENANT, made, 12) == consistency_proof(await _leaves(store), 12)
        await Attacker(conn, audit_schema, TENANT).execute(
            "UPDATE {table} SET hash = (SELECT hash FROM {table} WHERE tenant_id=$1 AND seq=21) "
            "WHERE tenant_id=$1 AND seq=20", TENANT)
        with pytest.raises(TreeBroken, match="no longer make the tree about to be signed"):
            await proof(store.pool, TENANT, made, 12)
    finally:
        await conn.close()
        await store.pool.close()


class _Counting:
    """A pool whose fetches are counted by rows: the most one read held."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool, self.largest, self.reads = pool, 0, 0

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        rows = await self.pool.fetch(query, *args)
        self.largest, self.reads = max(self.largest, len(rows)), self.reads + 1
        return rows


async def test_a_witness_proof_over_a_stretch_of_many_chunks_is_every_leafs_proof(
        infra: dict[str, str], audit_schema: str) -> None:
    """A witness's proof reads the leaves again one chunk at a time (7 here: 51 leaves since the last checkpoint, 8
    chunks, the last one short): for every size the witness may hold it is the proof of every leaf, and no read
    holds more than a chunk; an entry changed or deleted at either end of a chunk is refused."""
    signer = Signer.ephemeral()
    store = await store_for(infra["postgres"], audit_schema, signer)
    conn = await asyncpg.connect(infra["postgres"])
    try:
        await _grow(store, 27)  # 81 entries: the last checkpoint at 30, 51 since
        hashes = [r["hash"] for r in await store.pool.fetch(
            "SELECT hash FROM audit_log WHERE tenant_id=$1 ORDER BY seq", TENANT)]
        leaves = [entry_leaf(h) for h in hashes]
        made = Tree(CompactRange.of(leaves[:30]), CompactRange.of(leaves))
        for old in range(0, 82):
            counting = _Counting(store.pool)
            assert await proof(counting, TENANT, made, old, chunk=7) == consistency_proof(leaves, old), old
            assert counting.largest <= 7
        attacker = Attacker(conn, audit_schema, TENANT)
        for seq in (31, 37, 38, 44, 81):  # a chunk's first and last leaves (31..37, 38..44, ..., 80..81)
            await attacker.execute("UPDATE {table} SET hash=$2 WHERE tenant_id=$1 AND seq=$3", TENANT, "ab" * 32, seq)
            with pytest.raises(TreeBroken, match="no longer make the tree about to be signed"):
                await proof(store.pool, TENANT, made, 30, chunk=7)
            await attacker.execute("UPDATE {table} SET hash=$2 WHERE tenant_id=$1 AND seq=$3", TENANT,
                                   hashes[seq - 1], seq)
        await attacker.execute("DELETE FROM {table} WHERE tenant_id=$1 AND seq=44", TENANT)
        with pytest.raises(TreeBroken, match="entries were deleted"):
            await proof(store.pool, TENANT, made, 30, chunk=7)
    finally:
        await conn.close()
        await store.pool.close()
