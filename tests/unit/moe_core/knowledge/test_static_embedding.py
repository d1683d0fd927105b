"""The semantic cache's static embedding (moe_core.knowledge.static_embedding): distilled deterministically from the
packaged MiniLM, built once per cache dir however many processes ask at the same time, unit vectors that are a
mean of token rows (hence blind to word order: planner.cache_text's order guard, tests/unit/planner/
test_cache_static_thresholds.py).

Cheap: the distillation is run on the vocabulary's first 600 tokens (~1 s of CPU); the whole table (45 s of CPU,
built once into MOE_EMBEDDING_CACHE_DIR) only where the planner tests need it."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from moe_core.knowledge import static_embedding
from moe_core.knowledge.embeddings import model_files
from moe_core.knowledge.static_embedding import DIMENSION, StaticEmbedder, distil, table_path, token_vectors

pytestmark = pytest.mark.unit


def test_the_distillation_gives_the_same_bytes_twice() -> None:
    model, tokenizer = model_files()
    first = distil(token_vectors(model, tokenizer, limit=600), dims=64)
    second = distil(token_vectors(model, tokenizer, limit=600), dims=64)
    assert first.shape == (600, 64) and first.dtype == np.float32
    assert first.tobytes() == second.tobytes()


def test_processes_asking_at_once_build_the_table_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOE_EMBEDDING_CACHE_DIR", str(tmp_path))
    builds: list[int] = []
    started = threading.Barrier(4)

    def small(model: Path, tokenizer: Path, limit: int | None = None) -> np.ndarray:
        builds.append(1)
        return np.random.default_rng(len(builds)).standard_normal((300, 384)).astype(np.float32)

    monkeypatch.setattr(static_embedding, "token_vectors", small)
    found: list[Path] = []

    def ask() -> None:
        started.wait()
        found.append(table_path())

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1 and len(set(found)) == 1
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".npy"] == [found[0].name]  # no temporary file left
    assert np.load(found[0]).shape == (300, DIMENSION)


def test_vectors_are_unit_means_of_token_rows_blind_to_order() -> None:
    embedder = StaticEmbedder()
    a, b, c, empty = embedder.embed(["convert 5 kilometres to miles", "convert 5 miles to kilometres",
                                     "how do i boil an egg", ""])
    assert embedder.embed([]).shape == (0, DIMENSION)
    assert np.isclose(np.linalg.norm(a), 1.0, atol=1e-5) and np.isclose(np.linalg.norm(c), 1.0, atol=1e-5)
    assert float(a @ b) > 1 - 1e-5  # the same tokens in another order: the same vector
    assert float(a @ c) < 0.9
    assert not empty.any()  # no token: the zero vector (distance 1 from every entry)
