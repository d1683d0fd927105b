"""The embedder keeps the vectors of recent texts: the model runs once per distinct text (the planner embeds
the same normalised question for the cache lookup, the router and the cache store)."""

from __future__ import annotations

import numpy as np
import pytest

from moe_core.knowledge.embeddings import MiniLMEmbedder

pytestmark = pytest.mark.unit


class Counting(MiniLMEmbedder):
    def __init__(self, cache_size: int = 16) -> None:
        super().__init__(cache_size=cache_size)
        self.computed: list[list[str]] = []

    def _compute(self, texts: list[str]) -> np.ndarray:
        self.computed.append(list(texts))
        return super()._compute(texts)


def test_a_text_is_computed_once_and_its_vector_is_the_same() -> None:
    embedder = Counting()
    first = embedder.embed(["what is the capital of france", "boiling point of water"])
    again = embedder.embed(["boiling point of water", "speed of light", "boiling point of water"])
    assert embedder.computed == [["what is the capital of france", "boiling point of water"], ["speed of light"]]
    assert again.shape == (3, 384)
    np.testing.assert_array_equal(again[0], first[1])
    np.testing.assert_array_equal(again[2], first[1])


def test_cached_vectors_equal_a_fresh_computation() -> None:
    texts = ["turn on the wifi", "a much longer question about the tides and the moon", "hi"]
    cached = Counting()
    cached.embed(texts[:1])  # later batches mix cached and new texts (different padding)
    mixed = cached.embed(texts)
    fresh = MiniLMEmbedder(cache_size=0).embed(texts)
    np.testing.assert_allclose(mixed, fresh, atol=1e-5)
    assert np.allclose(np.linalg.norm(mixed, axis=1), 1.0, atol=1e-5)


def test_the_cache_is_bounded_and_evicts_the_least_recently_used() -> None:
    embedder = Counting(cache_size=2)
    embedder.embed(["a"])
    embedder.embed(["b"])
    embedder.embed(["a"])  # a is now the most recent
    embedder.embed(["c"])  # evicts b
    embedder.embed(["a", "b"])
    assert embedder.computed == [["a"], ["b"], ["c"], ["b"]]


def test_callers_cannot_change_the_cached_vector() -> None:
    embedder = Counting()
    vector = embedder.embed(["stable"])
    vector[0][:] = 0.0
    assert np.linalg.norm(embedder.embed(["stable"])[0]) == pytest.approx(1.0, abs=1e-5)
    assert embedder.computed == [["stable"]]


def test_texts_asked_for_at_the_same_time_run_in_one_batch_with_the_same_vectors() -> None:
    """Callers that queue while a model run is on share the next run (texts of similar length in one group, a
    much longer one apart); each gets exactly the vector it would get alone."""
    import threading
    import time

    short = ["what is the capital of france", "how do i reset my password", "who wrote hamlet"]
    long = "compare a violin and a telescope as they were in the year 1700: explain in detail how each was made"
    alone = {t: MiniLMEmbedder(cache_size=0).embed([t])[0] for t in [*short, long]}
    embedder = Counting()
    embedder.embed(["warm up"])
    results: dict[str, np.ndarray] = {}
    with embedder._run_lock:  # a model run is on: the callers below queue up
        threads = [threading.Thread(target=lambda t=t: results.update({t: embedder.embed([t])[0]}))
                   for t in [*short, long]]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while len(embedder._queue) < 4:
            assert time.monotonic() < deadline, "the callers did not queue"
            time.sleep(0.01)
    for thread in threads:
        thread.join(30)
    assert embedder.computed[0] == ["warm up"]
    assert sorted(map(sorted, embedder.computed[1:])) == sorted([sorted(short), [long]])  # 2 runs, 4 callers
    assert embedder.coalesced == 4 and embedder.computations == 5
    for text, vector in results.items():
        np.testing.assert_allclose(vector, alone[text], rtol=0, atol=1e-6)


def test_a_failed_batch_fails_every_caller_and_the_next_call_runs_again() -> None:
    class Failing(Counting):
        fail = True

        def _compute(self, texts: list[str]) -> np.ndarray:
            if self.fail:
                self.fail = False
                raise RuntimeError("model run failed")
            return super()._compute(texts)

    embedder = Failing()
    with pytest.raises(RuntimeError, match="model run failed"):
        embedder.embed(["a question"])
    assert embedder.cached("a question") is None
    assert embedder.embed(["a question"]).shape == (1, 384) and embedder.computed == [["a question"]]


def test_a_vector_is_the_same_bits_alone_or_in_a_batch_whatever_its_length() -> None:
    """The int8 kernel computes rows in pairs and a lone last row another way (~0.4 % apart): every run is padded
    to an even number of tokens (PAD_MULTIPLE), so a text's rows are computed the same way alone or batched."""
    embedder = MiniLMEmbedder(cache_size=0)
    longer = " ".join(["word"] * 45)
    for n in range(1, 12):
        text = " ".join(["word"] * n)
        alone = embedder._compute([text])[0]
        np.testing.assert_array_equal(alone, embedder._compute([text, longer])[0])
        np.testing.assert_array_equal(alone, embedder._compute([longer, "x", text])[2])
