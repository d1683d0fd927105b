"""The ranking of the semantic /graph/search (moe_core.knowledge.graph.semantic_search.rank) on hand-made vectors: an
entity's score is its best text's cosine, an exact name or alias scores 1.0, nothing below the threshold, best
first and ties by name; EntityVectors embeds a text once. On Neo4j:
tests/graph/graph_ingest/test_quarantine_and_api.py."""

from __future__ import annotations

import numpy as np
import pytest

from moe_core.knowledge.graph.semantic_search import EntityVectors, rank

pytestmark = pytest.mark.unit


def _candidate(name: str, *aliases: str) -> dict[str, object]:
    return {"uid": name, "name": name, "key": name.lower(), "alias_keys": [a.lower() for a in aliases]}


def test_best_text_wins_exact_is_one_and_the_threshold_cuts() -> None:
    candidates = [_candidate("Beta"), _candidate("Alpha", "A1"), _candidate("Gamma"), _candidate("Tylenol")]
    vectors = np.array([[0.6, 0.8], [0.2, 0.98], [0.6, 0.8], [0.0, 1.0], [0.5, 0.5]], dtype=np.float32)
    owners = [0, 1, 1, 2, 3]  # Alpha has two texts: its alias is the closer one
    query = np.array([1.0, 0.0], dtype=np.float32)
    assert rank("x", query, candidates, vectors, owners, 0.55, 10) == [(1, 0.6), (0, 0.6)]  # a tie: by name
    assert rank("x", query, candidates, vectors, owners, 0.55, 1) == [(1, 0.6)]
    assert rank("TYLENOL", query, candidates, vectors, owners, 0.55, 10)[0] == (3, 1.0)  # exact name
    assert rank("a1", query, candidates, vectors, owners, 0.7, 10) == [(1, 1.0)]  # exact alias
    assert rank("x", query, candidates, vectors, owners, 0.9, 10) == []


def test_a_text_is_embedded_once() -> None:
    seen: list[str] = []

    def embed(texts: list[str]) -> list[list[float]]:
        seen.extend(texts)
        return [[float(len(t)), 1.0] for t in texts]

    vectors = EntityVectors(embed, size=10)
    first = vectors.vectors(["ab", "abc", "ab"])
    assert first.shape == (3, 2) and first[0][0] == first[2][0] == 2.0
    vectors.vectors(["abc", "abcd"])
    assert seen == ["ab", "abc", "abcd"]
