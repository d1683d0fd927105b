"""The semantic cache's in-process index (planner.cache_index): the same candidates, hence the same hit/miss
decisions, as the distance over every entry of the scope (what a filtered Chroma query returned); flags,
scopes, expiry and the per-tenant memory bound with its eviction.

Real embeddings (the packaged MiniLM) of the labelled pairs, tests/data/cache_pairs.yaml; no store.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from moe_core.contracts import CacheEntry
from moe_core.knowledge.embeddings import cosine_distance, get_embedder
from planner.cache_index import ENTRY_OVERHEAD_BYTES, CacheIndex, decode_vector, encode_vector, text_bytes, unit
from planner.cache_text import normalise
from planner.semantic_cache import Candidate, decide
from planner.settings import PlannerSettings

pytestmark = pytest.mark.unit
DATA = Path(__file__).resolve().parents[2] / "data"
DIM = 384


def _entry(key: str, vector: np.ndarray, scope: str = "s", tenant: str = "t", question: str = "q",
           answer: str = "a", created_at: float | None = None, flagged: bool = False) -> CacheEntry:
    return CacheEntry(cache_key=key, scope=scope, tenant_id=tenant, mode="moe-orchestrator", question=question,
                      normalised=normalise(question), vector=encode_vector(vector), answer=answer, response_id=key,
                      created_at=time.time() if created_at is None else created_at, flagged=flagged)


def _basis(i: int) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[i] = 1.0
    return v


def test_the_index_decides_the_labelled_pairs_as_the_distance_over_the_whole_scope_does() -> None:
    data = yaml.safe_load((DATA / "cache_pairs.yaml").read_text())
    pairs = [(p[0], p[1]) for p in data["paraphrases"]] + [(m["a"], m["b"]) for m in data["near_misses"]]
    # one tenant's scope holds every first question (one per normalised text: equal vectors would tie)
    stored = list({normalise(a): a for a, _ in pairs}.values())
    asked = [b for _, b in pairs]
    vectors = get_embedder().embed([normalise(q) for q in stored + asked])
    stored_v = dict(zip(stored, vectors[:len(stored)], strict=True))
    index = CacheIndex(tenant_max_bytes=1 << 30)
    for i, question in enumerate(stored):
        index.apply(_entry(f"k{i}", stored_v[question], question=question, answer=f"answer {i}"))
    s = PlannerSettings()
    k = max(s.cache_few_shot_max, 1) + 3
    hits = 0
    for question, vector in zip(asked, vectors[len(stored):], strict=True):
        found = index.nearest("s", vector, k, newer_than=0)
        brute = sorted(((f"k{i}", q, cosine_distance(stored_v[q], vector)) for i, q in enumerate(stored)),
                       key=lambda c: c[2])[:k]
        assert [key for key, _, _ in brute] == [e.cache_key for e, _ in found]
        assert np.allclose([d for _, _, d in brute], [d for _, d in found], atol=1e-5)
        via_index = decide([Candidate(e.cache_key, e.question, e.answer, d) for e, d in found], question,
                           s.cache_hard_threshold, s.cache_soft_threshold, s.cache_few_shot_max)
        via_distance = decide([Candidate(key, q, "", d) for key, q, d in brute], question,
                              s.cache_hard_threshold, s.cache_soft_threshold, s.cache_few_shot_max)
        assert (via_index.hit and via_index.hit.key) == (via_distance.hit and via_distance.hit.key), question
        assert [f.question for f in via_index.few_shot] == [f.question for f in via_distance.few_shot]
        hits += via_index.hit is not None
    assert hits > 0


def test_scopes_flags_and_expiry() -> None:
    index = CacheIndex(tenant_max_bytes=1 << 20)
    now = time.time()
    index.apply(_entry("a", _basis(0), scope="s1"))
    index.apply(_entry("b", _basis(0), scope="s2"))
    index.apply(_entry("old", _basis(0), scope="s1", created_at=now - 100))
    assert [e.cache_key for e, _ in index.nearest("s1", _basis(0), 5, newer_than=now - 50)] == ["a"]
    assert {e.cache_key for e, _ in index.nearest("s1", _basis(0), 5, newer_than=0)} == {"a", "old"}
    assert index.nearest("s3", _basis(0), 5, newer_than=0) == []
    [(found, distance)] = index.nearest("s2", _basis(1), 5, newer_than=0)
    assert found.cache_key == "b" and distance == pytest.approx(1.0)  # orthogonal: cosine distance 1
    flagged = index.get("a")
    assert flagged is not None
    index.apply(flagged.model_copy(update={"flagged": True}))  # a flag leaves the index ...
    assert index.get("a") is None and [e.cache_key for e, _ in index.nearest("s1", _basis(0), 5, 0)] == ["old"]
    index.apply(flagged.model_copy(update={"flagged": True}))  # ... idempotently
    assert len(index) == 2 and index.applied == 5


def test_each_tenant_is_bounded_and_loses_its_least_recently_used_entries_first() -> None:
    answer = "x" * 1000
    size = DIM * 4 + text_bytes(_entry("t1-0", _basis(0), tenant="t1", answer=answer)) + ENTRY_OVERHEAD_BYTES
    index = CacheIndex(tenant_max_bytes=3 * size)
    for i in range(3):
        index.apply(_entry(f"t1-{i}", _basis(i), tenant="t1", answer=answer))
    index.apply(_entry("t2-0", _basis(0), tenant="t2", answer=answer))
    assert index.tenant_bytes("t1") == 3 * size and index.evicted == 0
    index.touch("t1-0")  # a hit: t1-1 is now the least recently used
    index.apply(_entry("t1-3", _basis(3), tenant="t1", answer=answer))
    assert index.get("t1-1") is None and index.evicted == 1
    assert {k for k in ("t1-0", "t1-2", "t1-3", "t2-0") if index.get(k)} == {"t1-0", "t1-2", "t1-3", "t2-0"}
    assert index.tenant_bytes("t1") == 3 * size and index.tenant_bytes("t2") == size  # the other tenant untouched
    assert [e.cache_key for e, _ in index.nearest("s", _basis(1), 1, 0)] != ["t1-1"]


def test_vectors_travel_as_exact_float32() -> None:
    vector = get_embedder().embed(["how do i turn on the wifi"])[0]
    assert np.array_equal(decode_vector(encode_vector(vector)), vector.astype(np.float32))


def test_stores_and_flags_past_the_matrix_capacity_keep_every_row_in_place() -> None:
    rng = np.random.default_rng(7)
    vectors = {f"k{i}": unit(rng.standard_normal(DIM)) for i in range(20)}  # rows: 8 -> 16 -> 32
    index = CacheIndex(tenant_max_bytes=1 << 30)
    for key, vector in vectors.items():
        index.apply(_entry(key, vector))
    for key in ("k3", "k19", "k0"):  # a middle row, the last row, the first row
        index.apply(_entry(key, vectors.pop(key), flagged=True))
    index.apply(_entry("k5", vectors["k5"] * 2))  # the same key again: one row, replaced
    probe = unit(rng.standard_normal(DIM))
    found = index.nearest("s", probe, 100, newer_than=0)
    expected = sorted(((k, cosine_distance(v, probe)) for k, v in vectors.items()), key=lambda kv: kv[1])
    assert [e.cache_key for e, _ in found] == [k for k, _ in expected] and len(index) == 17
    assert np.allclose([d for _, d in found], [d for _, d in expected], atol=1e-5)
