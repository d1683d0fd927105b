"""How often a checkpoint re-derives and verifies each stored entry, and what that costs (issue 52), on the local
Postgres (started if it is not running, as bench.audit_costs):

  python -m bench.checkpoint_costs count [REQUESTS_PER_INTERVAL [INTERVALS [OUTAGE]]]   (default 20 8 4)
  python -m bench.checkpoint_costs setup N          -> prints a schema holding N entries of tenant "bench"
  python -m bench.checkpoint_costs check SCHEMA K [remembered]  -> verify_since over it K times (0: the rest only)
  python -m bench.checkpoint_costs drop SCHEMA

count: INTERVALS intervals of REQUESTS_PER_INTERVAL full requests (bench.audit_costs: 12 records and their 16
lineage events each) appended, each followed by checkpoint_all as codex-lineage's loop calls it; during the first
OUTAGE intervals the witness is unreachable (WitnessUnavailable: nothing is signed, the loop asks again at the next
interval). Printed: per interval, the entries handed to verify_chain and the stored rows turned back into their
signed content (entries.content_of_row), and per entry how many times each happened over the whole run.

setup/check: the CPU of the check alone: check prints this process's CPU time in verify_since per entry (noisy on a
shared machine: alternate before/after runs), or count instructions under callgrind (`valgrind --tool=callgrind
--callgrind-out-file=/dev/null python -m bench.checkpoint_costs check SCHEMA K` for K = 0 and K = 1: the difference
over N is the instructions per entry; slow). Before/after: an older tree first on PYTHONPATH (see bench.audit_costs).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.audit_costs import batches, stream
from bench.infra import connect

TENANT = "bench"


async def _store(schema: str, signer: Any) -> Any:
    from moe_core.audit.store import AuditStore

    return await AuditStore.connect(connect(["postgres"])["postgres"], schema, signer=signer)


def _counting() -> tuple[Counter[int], Counter[int]]:
    """(entries handed to verify_chain, rows turned into content) per seq, from now on in this process."""
    import moe_core.audit.entries as entries
    import moe_core.audit.stretch as stretch

    verified: Counter[int] = Counter()
    derived: Counter[int] = Counter()
    real_verify, real_content = stretch.verify_chain, entries.content_of_row

    def verify_chain(chain: list[Any], *args: Any, **kwargs: Any) -> Any:
        verified.update(e.seq for e in chain)
        return real_verify(chain, *args, **kwargs)

    def content_of_row(row: Any) -> Any:
        derived[row["seq"]] += 1
        return real_content(row)

    stretch.verify_chain = verify_chain  # type: ignore[assignment]
    entries.content_of_row = content_of_row
    return verified, derived


async def count(per_interval: int, intervals: int, outage: int) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from moe_audit_verify.note import ED25519, NoteKey, raw
    from moe_core.audit.checkpoints import Anchoring, checkpoint_all
    from moe_core.audit.signer import Signer
    from moe_core.audit.witness import WitnessClient

    signer = Signer.ephemeral()
    schema = f"audit_cc_{uuid.uuid4().hex[:8]}"
    store = await _store(schema, signer)
    unreachable = WitnessClient("http://127.0.0.1:9", NoteKey("w", ED25519, raw(
        Ed25519PrivateKey.generate().public_key())), timeout_s=1.0)
    anchoring = Anchoring(signer, None)
    verified, derived = _counting()
    try:
        for i in range(intervals):
            for cut in batches(stream(per_interval, 8, TENANT)):
                await store.append_many(cut)
            anchoring.witness = unreachable if i < outage else None
            before_v, before_d = sum(verified.values()), sum(derived.values())
            made, refused = await checkpoint_all(store, anchoring, timedelta(hours=1), 60.0)
            head = await store.pool.fetchval("SELECT max(seq) FROM audit_log WHERE tenant_id=$1", TENANT)
            print(f"interval {i + 1}: head {head}, {'signed' if made else 'not signed: ' + refused[0][:60]}; "
                  f"verified {sum(verified.values()) - before_v}, derived {sum(derived.values()) - before_d}")
        head = await store.pool.fetchval("SELECT max(seq) FROM audit_log WHERE tenant_id=$1", TENANT)
        for name, seen in (("verified", verified), ("derived", derived)):
            times = Counter(seen[s] for s in range(1, head + 1))
            print(f"{name}: {sum(seen.values())} for {head} entries ({sum(seen.values()) / head:.2f} each); "
                  f"entries by times: {dict(sorted(times.items()))}")
    finally:
        await store.drop()
        await store.close()


def _key_file(schema: str) -> Path:
    return Path(tempfile.gettempdir()) / f"{schema}.pem"


async def setup(n: int) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    from moe_core.audit.signer import Signer

    schema = f"audit_cc_{uuid.uuid4().hex[:8]}"
    key = Ed25519PrivateKey.generate()
    _key_file(schema).write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    store = await _store(schema, Signer(key))
    try:
        items = stream(n // 28 + 1, 8, TENANT)
        for cut in batches(items):
            await store.append_many(cut)
        await store.pool.execute("DELETE FROM audit_log WHERE tenant_id=$1 AND seq > $2", TENANT, n)
    finally:
        await store.close()
    print(schema)


async def check(schema: str, times: int, remembered: bool) -> None:
    """verify_since over the whole stretch, `times` times, as codex-lineage's checkpoint makes it: with the signatures
    this process made remembered (`remembered`: they are, before the clock of K = 1 and K = 0 alike) or not (after a
    restart: every signature verified with Ed25519)."""
    from moe_audit_verify.format import content_hash
    from moe_core.audit.entries import content_of_row
    from moe_core.audit.signer import Signer
    from moe_core.audit.stretch import verify_since

    signer = Signer.from_pem(_key_file(schema).read_bytes())
    store = await _store(schema, signer)
    try:
        async with store.pool.acquire() as conn:
            rows = await conn.fetch("SELECT * FROM audit_log WHERE tenant_id=$1 ORDER BY seq", TENANT)
            head, spent = len(rows), 0.0
            for _ in range(times):
                if remembered:
                    signer.remember((content_hash(content_of_row(r)), r["signature"]) for r in rows)
                ring = signer.verifier()
                clock = time.process_time()
                assert await verify_since(conn, TENANT, 1, head, None, ring) == []
                spent += time.process_time() - clock
        print(f"{times} x verify_since over {head} entries ({'remembered' if remembered else 'verified'}): "
              f"{spent / max(times * head, 1) * 1e6:.1f} us CPU per entry (noisy: alternate runs)")
    finally:
        await store.close()


async def drop(schema: str) -> None:
    from moe_core.audit.signer import Signer

    store = await _store(schema, Signer.ephemeral())
    await store.drop()
    await store.close()
    _key_file(schema).unlink(missing_ok=True)


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "count":
        numbers = [int(a) for a in args]
        asyncio.run(count(*numbers, *(20, 8, 4)[len(numbers):]))
    elif command == "setup":
        asyncio.run(setup(int(args[0])))
    elif command == "check":
        asyncio.run(check(args[0], int(args[1]), args[2:] == ["remembered"]))
    else:
        asyncio.run(drop(args[0]))
