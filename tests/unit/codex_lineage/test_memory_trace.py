"""The leak hunt's report (codex_lineage.memory_trace, MOE_LINEAGE_TRACEMALLOC_S): it names the line that grew, by
how much, and is off unless asked for."""

from __future__ import annotations

import tracemalloc

import pytest

from codex_lineage.memory_trace import rss_mb, top_growth
from codex_lineage.settings import LineageSettings

pytestmark = pytest.mark.unit

_kept: list[bytes] = []


def _grow(n: int) -> None:
    _kept.extend(bytes(1000) for _ in range(n))  # the growing site


def test_the_growing_site_is_named_with_its_growth() -> None:
    tracemalloc.start(1)
    try:
        before = tracemalloc.take_snapshot()
        _grow(2000)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    found = top_growth(after, before, 3)
    assert found, "no site grew"
    assert "test_memory_trace.py" in found[0].site
    assert found[0].size_diff_kb >= 2000  # 2,000 blocks of 1 kB (and their headers)
    assert found[0].count_diff >= 2000
    _kept.clear()


def test_it_is_off_by_default_and_reads_the_resident_set() -> None:
    assert LineageSettings().lineage_tracemalloc_s == 0
    assert rss_mb() > 1
