"""The check of a tenant's entries since its last checkpoint, read and verified in bounded chunks: codex-lineage's
memory for it is one chunk's (STRETCH_CHUNK entries), whatever the stretch's length (the fleet's rate times the
checkpoint interval: ~17,000 entries a minute at 11 requests/s, about 3 KB each in memory while checked).

Each chunk is one seq range [lo, lo + STRETCH_CHUNK), verified by moe_audit_verify.segment.verify_chain from the
hash of the entry before it (the last checkpoint's root, or the previous chunk's last entry, whose stored hash the
previous chunk found to be the chain's). A chunk that is not exactly its seqs, once each, or that has any finding,
or an entry without a key id after a keyed one in an earlier chunk (keyless_after_keyed across chunks), sends the
whole stretch to one verify_chain call, as before chunking: every finding is then the one the whole stretch gives
(a chain found broken is refused, and checked again only after a doubling wait: checkpoints.checkpoint_all).

A stretch found whole is kept (Verified, per tenant): when the checkpoint is not made after all (the witness or the
timestamp authority unreachable: asked again at the next interval), the next check verifies only the entries since,
from the kept stretch's last hash, instead of every entry since the last checkpoint again (issue 52: 2, 3, 4 ... times
each over an outage, O(n^2)). The kept stretch is used only while its rows are the very row versions it verified:
the (seq, xmin) of every row, read again in one statement; any UPDATE, DELETE or INSERT among them gives a row
another xmin (the writing transaction's), and the whole stretch is then verified again, as before."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from moe_audit_verify.keys import KeyRing
from moe_audit_verify.segment import Checkpoint, Entry, Problem, verify_chain
from moe_core.audit.entries import entry_of_row

STRETCH_CHUNK = 1000  # entries per read: ~3 MB of rows and entries while a chunk is checked (measured, issue 52)
_ROWS = "SELECT *, xmin AS row_version FROM audit_log WHERE tenant_id=$1 AND seq >= $2 AND seq < $3 ORDER BY seq"
_VERSIONS = ("SELECT string_agg(seq || ':' || xmin || ',', '' ORDER BY seq) FROM audit_log WHERE tenant_id=$1 AND "
             "seq >= $2 AND seq <= $3")


@dataclass(frozen=True)
class Verified:
    """Entries first..size found whole against `anchor` (the root of the checkpoint of size first - 1): the stored
    hash of entry `size`, whether one of them names a key, and the hash of their rows' "seq:xmin," as verified."""

    first: int
    anchor: str | None
    size: int
    hash: str
    keyed: bool
    versions: Any  # hashlib's sha256, extended by each row verified (copied before it is extended again)


async def verify_since(conn: Any, tenant: str, first: int, head: int, anchor: str | None,
                       trusted: KeyRing, chunk: int | None = None,
                       kept: dict[str, Verified] | None = None) -> list[Problem]:
    """The findings of entries first..head (and any stored beyond head) against `anchor`, the root of the checkpoint
    of size first - 1 (None: first is 1); [] when the stretch is whole. `kept`: each tenant's stretch found whole
    (kept[tenant] is replaced by this one when it is whole, and dropped when it is not)."""
    step = chunk or STRETCH_CHUNK
    mark = kept.pop(tenant, None) if kept is not None else None
    start, prev, keyed, versions = first, anchor, False, hashlib.sha256()
    if mark is not None and await _unchanged(conn, tenant, mark, first, anchor, head):
        start, prev, keyed, versions = mark.size + 1, mark.hash, mark.keyed, mark.versions.copy()
    for lo in range(start, head + 1, step):
        hi = min(lo + step, head + 1)  # the last chunk reads beyond the head too: an entry there is a finding
        rows = await conn.fetch(_ROWS, tenant, lo, hi if hi <= head else 2**62)
        entries = [entry_of_row(r) for r in rows]
        if [e.seq for e in entries] != list(range(lo, hi)) or (
                keyed and any(e.content.get("key_id") is None for e in entries)):
            return await _whole(conn, tenant, first, anchor, trusted)
        if found := verify_chain(entries, _anchor(lo, prev), trusted, tenant, lo, require_anchor=False):
            whole = lo == first and hi == head + 1  # the one chunk is the stretch: its findings are the stretch's
            return found if whole else await _whole(conn, tenant, first, anchor, trusted)
        prev, keyed = entries[-1].hash, keyed or any(e.content.get("key_id") is not None for e in entries)
        for r in rows:
            versions.update(f"{r['seq']}:{r['row_version']},".encode())
    if head < first:  # nothing since the last checkpoint, unless something was stored beyond the head
        return await _whole(conn, tenant, first, anchor, trusted)
    if kept is not None and prev is not None:
        kept[tenant] = Verified(first, anchor, head, prev, keyed, versions)
    return []


async def _unchanged(conn: Any, tenant: str, mark: Verified, first: int, anchor: str | None, head: int) -> bool:
    """The kept stretch starts where this one does, ends below its head (the entries after it are read: one beyond
    the head is a finding) and its rows are the row versions it verified."""
    if (mark.first, mark.anchor) != (first, anchor) or mark.size >= head:
        return False
    stored = await conn.fetchval(_VERSIONS, tenant, first, mark.size)
    return stored is not None and hashlib.sha256(stored.encode()).digest() == mark.versions.digest()


def _anchor(lo: int, root: str | None) -> list[Checkpoint]:
    return [Checkpoint({"size": lo - 1, "root": root}, "")] if lo > 1 and root is not None else []


async def _whole(conn: Any, tenant: str, first: int, anchor: str | None, trusted: KeyRing) -> list[Problem]:
    """The stretch in one verify_chain call: its exact findings (a chain that is not whole, or nothing to check)."""
    rows = await conn.fetch("SELECT * FROM audit_log WHERE tenant_id=$1 AND seq >= $2 ORDER BY seq", tenant, first)
    entries: list[Entry] = [entry_of_row(r) for r in rows]
    del rows
    return verify_chain(entries, _anchor(first, anchor), trusted, tenant, first, require_anchor=False)
