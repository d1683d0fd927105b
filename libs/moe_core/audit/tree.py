"""The Merkle tree of a tenant's next checkpoint, kept as a compact range (RFC 6962; C2SP tlog: the roots of the
perfect subtrees along the tree's right edge, at most log2(size) hashes) instead of read from every leaf of the log
at each checkpoint (issue 52: each checkpoint read every leaf hash of the log, O(n) memory and CPU per interval).

The tree is the last checkpoint's range extended by the leaves since (the stretch the checkpoint verifies anyway),
read one chunk at a time and folded in: codex-lineage's memory for it is one chunk's, whatever the stretch's length
(issue 52: all the leaf hashes since were read at once, ~250 bytes an entry, so the memory of every checkpoint grew
with the fleet's rate times the interval, and without a bound with a stretch left unsigned by an outage).
That range is the one this process made, or the one stored beside the checkpoint row (`tree_range`: a restart
resumes it); either is trusted only when it has the Merkle root the checkpoint signed (`tree_root` of its body), so
a range changed in the database is not used.

The leaves below the last checkpoint are still read, one chunk at a time folded into a range (the memory of one
chunk), when no trusted range is at hand (no stored one, or one that does not match) and again every `recheck_s` per
tenant. That read must give the root the last checkpoint signed and a leaf for every seq: an entry changed or deleted
below the last checkpoint is found then (ChainBroken), where reading every leaf found it at the next checkpoint (the
witness's refusal). Between two reads, a checkpoint made from the kept range is over the leaves as they were signed,
never over a changed one: the offline verifier names the changed row (its hash is not the chain's, nor in the tree).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from moe_audit_verify.merkle import CompactRange, ProofError, SpanRoots, consistency_spans, entry_leaf

TREE_CHUNK = 5000  # leaves per read, below the last checkpoint and since it (~1 MB of rows)
RECHECK_S = 3600.0  # how often the leaves below the last checkpoint are read again, per tenant
_LEAVES = "SELECT seq, hash FROM audit_log WHERE tenant_id=$1 AND seq >= $2 AND seq < $3 ORDER BY seq"


class TreeBroken(RuntimeError):
    """The leaves below the last checkpoint no longer make the tree it signed (the caller's ChainBroken)."""


@dataclass
class TreeKeeper:
    """Each tenant's compact range of the last checkpoint this process made, and when the leaves below it were last
    read in full (time.monotonic())."""

    recheck_s: float = RECHECK_S
    ranges: dict[str, CompactRange] = field(default_factory=dict)
    read: dict[str, float] = field(default_factory=dict)
    full_reads: int = 0  # how many times the leaves below a checkpoint were read in full (the test's evidence)
    clock: Callable[[], float] = time.monotonic


@dataclass
class Tree:
    """The tree of a checkpoint to be: the range of the last checkpoint's `base.size` leaves, and `range`, that range
    extended by the leaves since (their hashes are not kept: a witness's proof reads them again)."""

    base: CompactRange
    range: CompactRange

    def grown(self) -> CompactRange:
        return self.range.copy()


def signed_root(last: Any) -> bytes | None:
    """The Merkle root the checkpoint row `last` signed (its body's tree_root); None for one made before trees."""
    value = json.loads(last["body"]).get("tree_root") if last is not None else None
    return base64.b64decode(value) if isinstance(value, str) else None


def _trusted(last: Any, kept: CompactRange | None, signed: bytes | None) -> CompactRange | None:
    """The range of the last checkpoint: kept by this process or stored with it, when it has the signed root."""
    if last is None:
        return CompactRange()
    stored = None
    if last["tree_range"] is not None:
        try:
            stored = CompactRange.decoded(int(last["size"]), bytes(last["tree_range"]))
        except ProofError:
            stored = None  # not a range of that size: read the leaves
    for candidate in (kept, stored):
        if candidate is not None and signed is not None and candidate.size == last["size"] \
                and candidate.root() == signed:
            return candidate
    return None


async def read_range(conn: Any, tenant: str, size: int, chunk: int | None = None) -> CompactRange:
    """The range of leaves 1..size read from the log, one chunk at a time; TreeBroken when a seq is missing."""
    return await fold(conn, tenant, CompactRange(), size, chunk)


async def fold(conn: Any, tenant: str, out: CompactRange, head: int, chunk: int | None = None) -> CompactRange:
    """`out` extended by the leaves out.size + 1..head read from the log, one chunk at a time (the memory of one
    chunk); TreeBroken when a seq is missing."""
    async for leaves in _chunks(conn, tenant, out.size + 1, head, chunk):
        for leaf in leaves:
            out.append(leaf)
    return out


async def _chunks(conn: Any, tenant: str, first: int, head: int, chunk: int | None) -> AsyncIterator[list[bytes]]:
    """The leaf hashes of seq first..head, one chunk of seqs [lo, lo + chunk) at a time; TreeBroken when a seq is
    missing."""
    step = chunk or TREE_CHUNK
    for lo in range(first, head + 1, step):
        hi = min(lo + step, head + 1)
        rows = await conn.fetch(_LEAVES, tenant, lo, hi)
        if [r["seq"] for r in rows] != list(range(lo, hi)):
            raise TreeBroken(f"the chain holds {lo - 1 + len(rows)} entries up to seq {hi - 1}: entries were "
                             "deleted")
        leaves = [entry_leaf(r["hash"]) for r in rows]
        del rows
        yield leaves


async def tree_of(conn: Any, tenant: str, head: int, last: Any, keeper: TreeKeeper) -> Tree:
    """The tree of the checkpoint of size `head` after the checkpoint row `last` (None: the first)."""
    signed = signed_root(last)
    base = _trusted(last, keeper.ranges.get(tenant), signed)
    now = keeper.clock()
    if last is not None and (base is None or now - keeper.read.get(tenant, now) >= keeper.recheck_s):
        size = int(last["size"])
        full = await read_range(conn, tenant, size)
        keeper.full_reads += 1
        if signed is not None and full.root() != signed:
            raise TreeBroken(f"the entries up to the last checkpoint (size {size}) no longer make the Merkle root it "
                             f"signed: an entry at or before seq {size} was changed in the database")
        base = full
        keeper.read[tenant] = now
    assert base is not None  # read above when not trusted
    keeper.read.setdefault(tenant, now)
    return Tree(base, await fold(conn, tenant, base.copy(), head))


async def proof(pool: Any, tenant: str, tree: Tree, old: int, chunk: int | None = None) -> list[bytes]:
    """The consistency proof from size `old` to the tree's: from the base range when old is its size (the witness
    holds the last checkpoint), else from the leaves up to the base too (a witness that holds another size). The
    leaves since the base are read again here, one chunk at a time (only each proof node's compact range is kept),
    and must make the tree that was folded under the chain's lock (TreeBroken: changed since)."""
    m, n = tree.base.size, tree.range.size
    spans = consistency_spans(old, n)
    known = tree.base.subtrees() if old == m else {}
    needed = [s for s in spans if s not in known]  # read from the first leaf a node needs, or the base's size
    nodes = SpanRoots(needed, min([m, *(lo for lo, _ in needed)]))
    again = tree.base.copy()
    async for leaves in _chunks(pool, tenant, nodes.index + 1, n, chunk):
        for leaf in leaves:
            if nodes.index >= m:
                again.append(leaf)
            nodes.append(leaf)
    if again.size != n or again.root() != tree.range.root():
        raise TreeBroken(f"the entries {m + 1}..{n} no longer make the tree about to be signed: the chain was "
                         "changed in the database")
    return [known[s] if s in known else nodes.roots[s] for s in spans]
