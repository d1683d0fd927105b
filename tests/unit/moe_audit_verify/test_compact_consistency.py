"""The consistency proof from a compact range and the leaves since (merkle.consistency_proof_from) is the RFC 9162
proof the full-leaves function makes, for every old size m and new size n of small trees and a spread of larger ones,
and it verifies against both roots."""

import pytest

from moe_audit_verify.merkle import (
    CompactRange,
    SpanRoots,
    consistency_proof,
    consistency_proof_from,
    consistency_spans,
    leaf_hash,
    root,
    verify_consistency,
)

pytestmark = pytest.mark.unit

LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(300)]


def _pairs() -> list[tuple[int, int]]:
    small = [(m, n) for n in range(0, 70) for m in range(0, n + 1)]
    large = [(m, n) for n in (127, 128, 129, 255, 256, 257, 300) for m in (1, 2, 3, 63, 64, 65, 100, 127, 128, n)
             if m <= n]
    return small + large


def test_the_compact_proof_is_the_full_leaves_proof() -> None:
    for m, n in _pairs():
        old = CompactRange.of(LEAVES[:m])
        proof = consistency_proof_from(old, LEAVES[m:n])
        assert proof == consistency_proof(LEAVES[:n], m), (m, n)
        if 0 < m:
            verify_consistency(m, n, root(LEAVES[:m]), root(LEAVES[:n]), proof)


def test_the_subtrees_of_a_compact_range_are_its_perfect_spans() -> None:
    spans = CompactRange.of(LEAVES[:13]).subtrees()
    assert list(spans) == [(0, 8), (8, 12), (12, 13)]
    assert spans[(8, 12)] == root(LEAVES[8:12])


def test_the_proof_nodes_from_streamed_leaves_are_the_full_leaves_proof() -> None:
    """Each node's root from its span (consistency_spans), the leaves appended one at a time (SpanRoots) from the
    old size, or from the first leaf for the nodes below it: the proof consistency_proof makes."""
    for m, n in _pairs():
        spans = consistency_spans(m, n)
        known = CompactRange.of(LEAVES[:m]).subtrees()
        for start, wanted in ((m, [s for s in spans if s not in known]), (0, spans)):
            nodes = SpanRoots(wanted, start)
            for leaf in LEAVES[start:n]:
                nodes.append(leaf)
            assert [known[s] if s in known and start else nodes.roots[s] for s in spans] == \
                consistency_proof(LEAVES[:n], m), (m, n, start)


def test_a_span_before_the_first_leaf_streamed_is_refused() -> None:
    with pytest.raises(ValueError, match="starts before leaf 8"):
        SpanRoots([(4, 8), (8, 12)], 8)
