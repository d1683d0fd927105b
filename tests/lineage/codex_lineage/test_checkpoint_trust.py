"""Which keys a checkpoint's check trusts, and what a refused chain costs, on the real Postgres.

After `make rotate-audit-key` the entries recorded since the last checkpoint were signed by the key now retired:
codex-lineage's check trusts the keyring's retired keys for what they signed before their retirement, as the
offline verifier does, so the next checkpoint covers them; an entry naming a key the check was not given is
named as such, without searching other places for its signature. A refused chain is reported at every call but
read and verified again only after a wait that doubles, up to the max age, and is signed once it is whole."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from moe_audit_verify import segment
from moe_audit_verify.keys import KeyRing
from moe_core.audit import checkpoints, keyring
from moe_core.audit.checkpoints import Anchoring, ChainBroken, checkpoint, checkpoint_all
from moe_core.audit.signer import Signer
from tests.lineage.attacker import Attacker
from tests.lineage.chain_store import TENANT, results, store_for

pytestmark = pytest.mark.infra


async def test_after_a_rotation_the_next_checkpoint_covers_what_the_retired_key_signed(
        infra: dict[str, str], audit_schema: str, tmp_path: Path) -> None:
    private, public, ring_file = tmp_path / "key.pem", tmp_path / "public.pem", tmp_path / "keyring.json"
    old = keyring.ensure(private, public, ring_file)
    store = await store_for(infra["postgres"], audit_schema, old)
    rid = f"r-{uuid.uuid4().hex}"
    try:
        await store.append_many(results(rid, 0, 2))
        assert await checkpoint(store, TENANT, Anchoring(old, None)) is not None
        await store.append_many(results(rid, 2, 2))  # recorded after the last checkpoint, before the rotation
        old_id, _ = keyring.rotate(private, public, ring_file)
        new = Signer.from_file(private)  # codex-lineage started again with the new key
        ring = keyring.read_keyring(ring_file)
        assert ring is not None and old_id in ring.retired
        new_store = await store_for(infra["postgres"], audit_schema, new)
        try:
            with pytest.raises(ChainBroken, match=rf"seq 7 \(.+\): signed by key {old_id}, not by a given key"):
                await checkpoint(new_store, TENANT, Anchoring(new, None))  # without the keyring: another key
            await new_store.append_many(results(rid, 4, 1))  # the new key's first entries
            forged = Signer.ephemeral()  # a key written into the keyring file as in use: never codex-lineage's
            with pytest.raises(ChainBroken, match=rf"seq 7 \(.+\): signed by key {old_id}, not by a given key"):
                await checkpoint(new_store, TENANT, Anchoring(new, None, ring=KeyRing(
                    [*ring.keys.values(), forged.public], {})))  # nor is a key the ring does not say was retired
            made = await checkpoint(new_store, TENANT, Anchoring(new, None, ring=ring))
            assert made is not None and made.size == 5 * 3 and made.body["key_id"] == new.key_id
        finally:
            await new_store.close()
    finally:
        await store.close()


async def test_an_entry_a_retired_key_signed_after_its_retirement_is_refused(
        infra: dict[str, str], audit_schema: str, tmp_path: Path) -> None:
    private, public, ring_file = tmp_path / "key.pem", tmp_path / "public.pem", tmp_path / "keyring.json"
    old = keyring.ensure(private, public, ring_file)
    old_id, _ = keyring.rotate(private, public, ring_file, now=datetime.now(UTC) - timedelta(minutes=5))
    store = await store_for(infra["postgres"], audit_schema, old)  # the old key kept and used after its retirement
    try:
        await store.append_many(results(f"r-{uuid.uuid4().hex}", 0, 1))
        new = Signer.from_file(private)
        with pytest.raises(ChainBroken, match=rf"signed by key {old_id} after its retirement"):
            await checkpoint(store, TENANT, Anchoring(new, None, ring=keyring.read_keyring(ring_file)))
    finally:
        await store.close()


async def test_an_unknown_key_is_named_and_not_searched_for_at_other_places(
        infra: dict[str, str], audit_schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    other = Signer.ephemeral()
    store = await store_for(infra["postgres"], audit_schema, other)
    try:
        await store.append_many(results(f"r-{uuid.uuid4().hex}", 0, 3))
        hashed = _count(monkeypatch, segment, "content_hash")
        ours = Signer.ephemeral()
        with pytest.raises(ChainBroken) as refused:
            await checkpoint(store, TENANT, Anchoring(ours, None))
        assert f"signed by key {other.key_id}, not by a given key ({ours.key_id})" in str(refused.value)
        assert hashed[0] == 9  # each entry's content once; no other seq tried for a signature no given key made
    finally:
        await store.close()


def _count(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> list[int]:
    calls = [0]
    real = getattr(module, name)

    def counting(*args: object, **kwargs: object) -> object:
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counting)
    return calls


async def test_a_refused_chain_is_checked_again_after_a_doubling_wait_and_signed_once_whole(
        infra: dict[str, str], audit_schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    signer = Signer.ephemeral()
    store = await store_for(infra["postgres"], audit_schema, signer)
    conn = await asyncpg.connect(infra["postgres"])
    anchoring = Anchoring(signer, None)
    hour = timedelta(hours=1)
    try:
        await store.append_many(results(f"r-{uuid.uuid4().hex}", 0, 3))
        attacker = Attacker(conn, audit_schema, TENANT)
        whole = await attacker.snapshot()
        await attacker.execute("UPDATE {table} SET payload = replace(payload, 'answer 1', 'answer X') "
                               "WHERE tenant_id=$1 AND seq=4", TENANT)
        checks = _count(monkeypatch, checkpoints, "verify_since")
        made, refused = await checkpoint_all(store, anchoring, hour, retry_s=60)
        assert made == [] and len(refused) == 1 and "signature does not match" in refused[0] and checks[0] == 1
        for _ in range(3):  # reported at every interval from what was found, the chain not read again
            made, again = await checkpoint_all(store, anchoring, hour, retry_s=60)
            assert made == [] and re.fullmatch(re.escape(refused[0]) + r" \(refused since .+; checked again within "
                                               r"60 s\)", again[0]) and checks[0] == 1
        waits = []
        for _ in range(8):  # due again: read and verified again, the wait doubled each time, up to the max age
            anchoring.refused[TENANT].due = 0
            await checkpoint_all(store, anchoring, hour, retry_s=60)
            waits.append(anchoring.refused[TENANT].wait_s)
        assert waits == [120, 240, 480, 960, 1920, 3600, 3600, 3600] and checks[0] == 9
        await attacker.restore(whole)  # repaired (e.g. from a backup): signed at the next check
        anchoring.refused[TENANT].due = 0
        made, refused = await checkpoint_all(store, anchoring, hour, retry_s=60)
        assert [cp.size for cp in made] == [9] and refused == [] and TENANT not in anchoring.refused
    finally:
        await conn.close()
        await store.close()
