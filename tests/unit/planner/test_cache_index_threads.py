"""A lookup in the semantic cache's index runs on the calling thread only, however many entries its scope holds,
in a process whose BLAS the service limited (moe_core.runtime.blas, applied by every service's lifespan).

numpy's OpenBLAS hands a matrix-vector product of more than 460,800 elements (1,200 rows of 384) to its thread
pool, whose threads then spin-wait: once a scope held 1,200 entries every lookup cost the planner ~30 ms more
CPU (docs/performance-history.md, "The planner's jump"). Counted here: the CPU clock ticks of this process's other
threads
(/proc/self/task) while the index answers lookups over 3,000 entries; the lookup's own work is on this thread.
Without the limit the other threads spent 86 ticks over the same 80 lookups.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from moe_core.contracts import CacheEntry
from moe_core.runtime.blas import blas_threads, limit_blas_threads
from moe_core.runtime.bus import Bus
from moe_core.runtime.service import create_service_app
from moe_core.runtime.settings import FleetSettings
from planner.cache_index import CacheIndex, encode_vector, unit

pytestmark = [pytest.mark.unit, pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc")]
DIM = 384


def _other_threads_ticks() -> int:
    """utime + stime of every thread of this process but the calling one (clock ticks)."""
    own = threading.get_native_id()
    total = 0
    for task in Path("/proc/self/task").iterdir():
        if int(task.name) == own:
            continue
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        total += int(fields[11]) + int(fields[12])
    return total


@pytest.fixture
def service_blas() -> Iterator[None]:
    """This test process's BLAS as a service's lifespan leaves it; the original limits restored after."""
    with threadpool_limits(limits=None):  # restores what it found on exit
        limit_blas_threads(FleetSettings().blas_threads)
        yield


async def test_a_service_lifespan_limits_blas_to_its_setting() -> None:
    with threadpool_limits(limits=None):
        limit_blas_threads(2)
        assert set(blas_threads()) == {2}
        settings = FleetSettings(service_name="blas")
        app = create_service_app(settings, Bus(settings), manage_broker=False)
        async with app.router.lifespan_context(app):
            assert blas_threads() and set(blas_threads()) == {1}


def test_lookups_over_a_large_scope_use_no_other_thread(service_blas: None) -> None:
    rng = np.random.default_rng(3)
    index = CacheIndex(tenant_max_bytes=1 << 30)
    for i in range(3000):
        index.apply(CacheEntry(cache_key=f"k{i}", scope="s", tenant_id="t", mode="m", question=f"q{i}",
                               normalised=f"q{i}", vector=encode_vector(unit(rng.standard_normal(DIM))), answer="a",
                               response_id=f"r{i}", created_at=time.time()))
    probes = [unit(rng.standard_normal(DIM)) for _ in range(80)]
    before = _other_threads_ticks()
    for probe in probes:
        found = index.nearest("s", probe, 5, newer_than=0)
        assert len(found) == 5
        time.sleep(0.01)  # lookups come one request apart: a pool's threads would spin-wait in between
    spent = _other_threads_ticks() - before
    # a thread pool's share of 80 products and its spinning after each is hundreds of ticks (~3 per lookup and
    # more); an unrelated thread of the test process may take a tick or two
    assert spent <= 5, f"other threads of the process spent {spent} ticks ({os.sysconf('SC_CLK_TCK')}/s) on lookups"


def test_the_distances_are_those_of_one_product_over_the_whole_scope(service_blas: None) -> None:
    rng = np.random.default_rng(5)
    index = CacheIndex(tenant_max_bytes=1 << 30)
    vectors = [unit(rng.standard_normal(DIM)) for _ in range(2500)]  # several products of rows
    for i, vector in enumerate(vectors):
        index.apply(CacheEntry(cache_key=f"k{i}", scope="s", tenant_id="t", mode="m", question="q", normalised="q",
                               vector=encode_vector(vector), answer="a", response_id=f"r{i}", created_at=time.time()))
    probe = unit(rng.standard_normal(DIM))
    whole = 1.0 - np.stack(vectors) @ probe
    expected = np.argsort(whole, kind="stable")[:50]
    found = index.nearest("s", probe, 50, newer_than=0)
    assert [e.cache_key for e, _ in found] == [f"k{i}" for i in expected]
    assert np.allclose([d for _, d in found], whole[expected], atol=1e-6)
