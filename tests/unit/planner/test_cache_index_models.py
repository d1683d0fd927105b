"""The cache index holds one model's vectors (planner.cache_index): an entry whose vector another model made is
never compared with them. With `reembed` (the static cache) its normalised question is embedded again as it is
applied; without (the MiniLM cache) it is left out of the index and counted. Entries of an older planner (no
`model`) are MiniLM's. The other model's vectors here have another dimension too, as MiniLM's (384) and the static
model's (256) do: compared, they would fail or, worse, of one dimension, give meaningless distances."""

from __future__ import annotations

import time

import numpy as np
import pytest

from moe_core.contracts import CacheEntry
from moe_core.knowledge.embeddings import MODEL_ID as MINILM
from planner.cache_index import CacheIndex, decode_vector, encode_vector
from planner.cache_text import normalise

pytestmark = pytest.mark.unit
STATIC = "static-test-model"


def _entry(key: str, question: str, vector: np.ndarray, model: str | None, flagged: bool = False) -> CacheEntry:
    return CacheEntry(cache_key=key, scope="s", tenant_id="t", mode="m", question=question,
                      normalised=normalise(question), vector=encode_vector(vector), model=model, answer="a",
                      response_id=key, created_at=time.time(), flagged=flagged)


def _unit(dim: int, i: int) -> np.ndarray:
    v = np.zeros(dim, dtype=np.float32)
    v[i] = 1.0
    return v


class Recorder:
    """A static 'model' for the test: the texts it was asked to embed, each a basis vector of 8 dimensions."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.texts += texts
        return np.stack([_unit(8, len(self.texts) % 8) for _ in texts])


def test_an_older_minilm_entry_is_embedded_again_by_the_static_index_never_compared_as_it_came() -> None:
    reembed = Recorder()
    index = CacheIndex(1 << 30, STATIC, reembed)
    index.apply(_entry("old", "What is the capital of France?", _unit(384, 3), model=None))  # an older planner's
    index.apply(_entry("mini", "How do I boil an egg?", _unit(384, 4), model=MINILM))
    index.apply(_entry("new", "How tall is Everest?", _unit(8, 0), model=STATIC))
    assert reembed.texts == [normalise("What is the capital of France?"), normalise("How do I boil an egg?")]
    assert (index.reembedded, index.other_model) == (2, 0)
    # every row is the static model's: the MiniLM rows were replaced, and the entries say so
    for key in ("old", "mini", "new"):
        got = index.get(key)
        assert got is not None and got.model == STATIC and decode_vector(got.vector).shape == (8,)
    found = index.nearest("s", _unit(8, 0), k=5, newer_than=0)
    assert {e.cache_key for e, _ in found} == {"old", "mini", "new"}
    assert [e.cache_key for e, d in found if d < 1e-6] == ["new"]


def test_the_minilm_index_leaves_out_static_entries_and_counts_them() -> None:
    index = CacheIndex(1 << 30)  # MiniLM's, no re-embedding
    index.apply(_entry("static", "How tall is Everest?", _unit(8, 0), model=STATIC))
    index.apply(_entry("mini", "How do I boil an egg?", _unit(384, 4), model=MINILM))
    index.apply(_entry("old", "What is the capital of France?", _unit(384, 5), model=None))
    assert (len(index), index.other_model, index.reembedded) == (2, 1, 0)
    assert index.get("static") is None
    assert {e.cache_key for e, _ in index.nearest("s", _unit(384, 4), k=5, newer_than=0)} == {"mini", "old"}


def test_a_key_stored_again_by_the_other_model_replaces_its_row_and_a_flag_removes_it() -> None:
    index = CacheIndex(1 << 30)
    index.apply(_entry("k", "How do I boil an egg?", _unit(384, 4), model=MINILM))
    index.apply(_entry("k", "How do I boil an egg?", _unit(8, 0), model=STATIC))  # left out: the old row goes too
    assert len(index) == 0 and index.nearest("s", _unit(384, 4), k=5, newer_than=0) == []
    static = CacheIndex(1 << 30, STATIC, Recorder())
    static.apply(_entry("k", "How do I boil an egg?", _unit(384, 4), model=MINILM))
    static.apply(_entry("k", "How do I boil an egg?", _unit(384, 4), model=MINILM, flagged=True))
    assert len(static) == 0 and static.reembedded == 1  # a flag is never embedded
