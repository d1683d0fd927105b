"""A tenant's log as an RFC 6962 (RFC 9162 section 2.1) Merkle tree: its root, the inclusion proof of one entry and
the consistency proof between two sizes, and their verification (the algorithms of RFC 9162, 2.1.3.2 and 2.1.4.2).

A leaf is an entry's chain hash (32 bytes: it covers the entry's content, hence its tenant and seq, and every entry
before it). Hashes are raw bytes here; they travel base64-encoded (C2SP tlog-checkpoint, tlog-witness)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof does not lead to the root it is checked against (or is malformed)."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def entry_leaf(chain_hash_hex: str) -> bytes:
    """The leaf hash of a stored entry (its chain hash, hex)."""
    return leaf_hash(bytes.fromhex(chain_hash_hex))


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of leaf hashes, computed bottom-up (no recursion: a log of millions of entries)."""
    if not leaves:
        return EMPTY_ROOT
    level = list(leaves)
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(m, D[n]): the audit path of leaf `index` in the tree of `leaves`."""
    if not 0 <= index < len(leaves):
        raise ValueError(f"leaf {index} is not in a tree of size {len(leaves)}")
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*inclusion_proof(leaves[:k], index), root(leaves[k:])]
    return [*inclusion_proof(leaves[k:], index - k), root(leaves[:k])]


def consistency_proof(leaves: Sequence[bytes], old: int) -> list[bytes]:
    """PROOF(m, D[n]) from the tree of size `old` to the tree of all `leaves` (empty when old is 0 or n)."""
    if not 0 <= old <= len(leaves):
        raise ValueError(f"size {old} is not within a tree of size {len(leaves)}")
    if old in (0, len(leaves)):
        return []
    return _subproof(leaves, old, True)


def _subproof(leaves: Sequence[bytes], m: int, complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(leaves[:k], m, complete), root(leaves[k:])]
    return [*_subproof(leaves[k:], m - k, False), root(leaves[:k])]


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected: bytes) -> None:
    """RFC 9162 2.1.3.2; raises ProofError unless the proof leads from the leaf to `expected`."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not within size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or r != expected:
        raise ProofError(f"the inclusion proof of leaf {index} does not lead to the root of size {size}")


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """RFC 9162 2.1.4.2; raises ProofError unless the tree of size `new` extends the one of size `old`."""
    if old > new:
        raise ProofError(f"size {old} is larger than size {new}: the log shrank")
    if old == new:
        if proof or old_root != new_root:
            raise ProofError(f"two different roots for size {new}")
        return
    if old == 0:
        if proof:
            raise ProofError("a proof from the empty tree must be empty")
        return
    path = list(proof)
    if old & (old - 1) == 0:  # a power of two: the old root is the first node of the path
        path.insert(0, old_root)
    if not path:
        raise ProofError("the consistency proof is empty")
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != old_root or sr != new_root:
        raise ProofError(f"the log of size {new} does not extend the one of size {old}: entries before {old} "
                         "were changed or removed")


class CompactRange:
    """The roots of the perfect subtrees that make up a tree of `size` leaves, largest first (at most log2(size)
    hashes): enough to go on appending leaves and computing the root at every size, without the leaves before. An
    export carries it for the size of its first checkpoint (checked against that checkpoint's root)."""

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != bin(size).count("1"):
            raise ProofError(f"a tree of size {size} is made of {bin(size).count('1')} perfect subtrees, "
                             f"not {len(hashes)}")
        self.size = size
        self.hashes = list(hashes)

    def append(self, leaf: bytes) -> None:
        self.hashes.append(leaf)
        self.size += 1
        merges = (self.size & -self.size).bit_length() - 1  # trailing zeros: how many equal-sized pairs to merge
        for _ in range(merges):
            right = self.hashes.pop()
            self.hashes[-1] = node_hash(self.hashes[-1], right)

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        out = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            out = node_hash(h, out)
        return out

    def encoded(self) -> bytes:
        """The hashes, concatenated (32 bytes each): what is stored beside a checkpoint (its size is the tree's)."""
        return b"".join(self.hashes)

    @classmethod
    def decoded(cls, size: int, data: bytes) -> CompactRange:
        """The range of a tree of `size` leaves from encoded(); ProofError when `data` is not that many hashes."""
        if len(data) % 32:
            raise ProofError(f"a compact range is whole 32-byte hashes, not {len(data)} bytes")
        return cls(size, [data[i:i + 32] for i in range(0, len(data), 32)])

    def copy(self) -> CompactRange:
        return CompactRange(self.size, self.hashes)

    @classmethod
    def of(cls, leaves: Sequence[bytes]) -> CompactRange:
        made = cls()
        for leaf in leaves:
            made.append(leaf)
        return made

    def subtrees(self) -> dict[tuple[int, int], bytes]:
        """Each perfect subtree of the range by its leaf span [lo, hi), largest (leftmost) first."""
        spans: dict[tuple[int, int], bytes] = {}
        lo = 0
        for bit, h in zip(sorted((1 << i for i in range(self.size.bit_length()) if self.size >> i & 1),
                                 reverse=True), self.hashes, strict=True):
            spans[(lo, lo + bit)] = h
            lo += bit
        return spans


def consistency_spans(m: int, n: int) -> list[tuple[int, int]]:
    """The leaf spans [lo, hi) of the nodes of PROOF(m, D[n]), in the proof's order: each node is the root of the
    leaves of its span (RFC 9162 2.1.4.1, without the leaves: what a reader streaming them needs to know)."""
    if not 0 <= m <= n:
        raise ValueError(f"size {m} is not within a tree of size {n}")
    if m in (0, n):
        return []
    lo, hi, size, complete = 0, n, m, True
    tail: list[tuple[int, int]] = []
    while size != hi - lo:
        k = _split(hi - lo)
        if size <= k:
            tail.append((lo + k, hi))
            hi = lo + k
        else:
            tail.append((lo, lo + k))
            lo, size, complete = lo + k, size - k, False
    return ([] if complete else [(lo, hi)]) + tail[::-1]


def consistency_proof_from(old: CompactRange, since: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) from the compact range of the tree of size m (`old`) and the leaves m..n-1 (`since`), without
    the leaves before m: every node of the proof within [0, m) is one of m's perfect subtrees, every other lies
    within [m, n). Equal to consistency_proof(leaves, m) for the same tree."""
    m = old.size
    spans = old.subtrees()

    def node(lo: int, hi: int) -> bytes:
        if hi <= m:
            return spans[(lo, hi)]
        if lo < m:  # never reached for a well-formed proof: a node across m is not part of one
            raise ValueError(f"the node [{lo}, {hi}) spans the old size {m}")
        return root(since[lo - m:hi - m])

    return [node(lo, hi) for lo, hi in consistency_spans(m, m + len(since))]


class SpanRoots:
    """The roots of disjoint leaf spans [lo, hi) of a tree (the nodes of a proof), from the tree's leaves appended
    one at a time from leaf `start` on: one span's compact range open at a time (log2 of its length in hashes), never
    the leaves. `roots` holds each span whose last leaf was appended."""

    def __init__(self, spans: Iterable[tuple[int, int]], start: int = 0) -> None:
        self._spans = sorted(spans)
        if self._spans and self._spans[0][0] < start:
            raise ValueError(f"the span {self._spans[0]} starts before leaf {start}")
        self._next = 0
        self._open = CompactRange()
        self.index = start  # the index of the next leaf
        self.roots: dict[tuple[int, int], bytes] = {}

    def append(self, leaf: bytes) -> None:
        i, self.index = self.index, self.index + 1
        if self._next == len(self._spans) or i < self._spans[self._next][0]:
            return
        self._open.append(leaf)
        if i + 1 == self._spans[self._next][1]:
            self.roots[self._spans[self._next]] = self._open.root()
            self._open, self._next = CompactRange(), self._next + 1
