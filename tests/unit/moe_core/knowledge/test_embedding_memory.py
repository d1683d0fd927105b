"""The embedder's memory is bounded (issue 52, item 6): onnxruntime's CPU memory arena kept the largest batch's
buffers for good (+63 MB of resident memory after batches of up to 64 questions, the planner's growth across a
bench run); the session runs without it, so what a batch allocates is freed after the call. Costs ~2 s (about 250
embeddings on one core)."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest

from moe_core.knowledge.embeddings import MiniLMEmbedder

pytestmark = pytest.mark.unit
BOUND_MB = 20.0  # issue 52's bound on one service's growth across a run


def _rss_mb() -> float:
    """Resident memory after glibc handed its free pages back (malloc_trim): what the session still holds, not
    what the allocator kept of freed buffers (that varied 1-27 MB run to run and failed CI once at +34 MB; the
    arena holds +119 MB through a trim)."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def _batch(n: int, tag: int) -> list[str]:
    return [f"Compare lithium {tag}-{i} and osmium as they were in the year {1000 + i}: explain in detail their "
            f"history, their physics and their everyday use" for i in range(n)]


def test_the_embedding_session_keeps_no_arena() -> None:
    embedder = MiniLMEmbedder(cache_size=1)
    embedder.embed(["warm up"])
    assert embedder._session.get_session_options().enable_cpu_mem_arena is False


def test_large_batches_leave_the_resident_memory_where_it_was() -> None:
    embedder = MiniLMEmbedder(cache_size=1)  # no vectors kept: only the session's own memory is measured
    embedder.embed(_batch(4, 0))
    before = _rss_mb()
    for tag, n in enumerate((8, 16, 32, 64, 64, 32, 16, 8, 1), 1):
        assert len(embedder.embed(_batch(n, tag))) == n
    assert _rss_mb() - before <= BOUND_MB
