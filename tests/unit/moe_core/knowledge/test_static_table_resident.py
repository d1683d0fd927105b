"""The static embedding's table read whole at load (StaticEmbedder.load(resident=True), the planner's
MOE_CACHE_STATIC_TABLE_RESIDENT): all its pages are in this process's resident set from then on, so the planner's
memory does not grow by up to the table's 31 MB as new questions' tokens page it in (issue 52, item 6: the bench
counted it as growth). Without it only the pages of rows used are. Measured in /proc/self/smaps, the mapping of
the table's own file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from moe_core.knowledge.embeddings import model_files
from moe_core.knowledge.static_embedding import DIMENSION, StaticEmbedder

pytestmark = pytest.mark.unit


def resident_kb(path: Path) -> int:
    """This process's resident KB of the mappings of `path`."""
    total, current = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split(" ", 1)[0]
        if "-" in head and ":" not in head:
            current = line.endswith(str(path))
        elif current and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


def _embedder(tmp_path: Path) -> tuple[StaticEmbedder, Path]:
    tokenizer = Tokenizer.from_file(str(model_files()[1]))
    path = tmp_path / "table.npy"  # a row per token of the vocabulary, as the real table (31 MB)
    rows = tokenizer.get_vocab_size()
    np.save(path, np.random.default_rng(3).standard_normal((rows, DIMENSION)).astype(np.float32))
    return StaticEmbedder(np.load(path, mmap_mode="r"), tokenizer), path


def test_a_resident_load_reads_every_page_of_the_table(tmp_path: Path) -> None:
    embedder, path = _embedder(tmp_path)
    size_kb = path.stat().st_size // 1024
    embedder.load()
    assert resident_kb(path) < size_kb // 4  # mapped, not read: pages come as rows are used
    embedder.load(resident=True)
    assert resident_kb(path) >= size_kb - 8  # every page (the header's page may be the only one short)
    first = embedder.embed(["the boiling point of water"])
    assert first.shape == (1, DIMENSION) and abs(float(np.linalg.norm(first)) - 1) < 1e-5


def test_a_lazy_table_grows_with_the_tokens_used(tmp_path: Path) -> None:
    """What the resident load takes out of a run's growth: each new text's tokens page in rows of their own."""
    embedder, path = _embedder(tmp_path)
    embedder.load()
    before = resident_kb(path)
    embedder.embed([" ".join(f"word{i}" for i in range(n, n + 200)) for n in range(0, 4000, 200)])
    assert resident_kb(path) > before
