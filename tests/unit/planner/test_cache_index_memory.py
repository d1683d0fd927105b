"""The per-tenant bound of the semantic cache's index (MOE_CACHE_INDEX_TENANT_MAX_MB) bounds the memory the index
really holds, measured with tracemalloc: entries as the cache topic delivers them (decoded from JSON), stored
well past the bound. Before, the index held each entry's vector three times (the message's base64 text, a
decoded copy, the matrix row) and its estimate counted one: ~8.2 KB held per entry against 2.5 KB counted, so
a tenant's 64 MB took ~210 MB (the planner's growth in make bench; docs/performance-history.md, "The planner's jump").
"""

from __future__ import annotations

import gc
import time
import tracemalloc

import numpy as np
import pytest

from moe_core.contracts import CacheEntry
from planner.cache_index import CacheIndex, decode_vector, encode_vector, unit

pytestmark = pytest.mark.unit
DIM = 384
BOUND = 2 * 1024 * 1024


def _message(i: int, vector: np.ndarray) -> str:
    """One cache-topic message like the bench's (a two-expert answer to a distinct question)."""
    question = f"Compare lithium and a violin as they were in the year {1000 + i}: explain in detail their history."
    return CacheEntry(cache_key=f"{i:032x}", scope="tenant-a\x00moe-orchestrator\x00", tenant_id="tenant-a",
                      mode="moe-orchestrator", question=question, normalised=question.lower(),
                      vector=encode_vector(vector), answer="One merged answer drawn from both experts.",
                      experts_used=["general", "science"], response_id=f"chatcmpl-{i:024x}",
                      created_at=time.time()).model_dump_json()


def test_a_tenant_past_its_bound_holds_about_its_bound() -> None:
    rng = np.random.default_rng(11)
    messages = [_message(i, unit(rng.standard_normal(DIM))) for i in range(2000)]  # ~4x the bound's worth
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        index = CacheIndex(tenant_max_bytes=BOUND)
        for raw in messages:
            index.apply(CacheEntry.model_validate_json(raw))
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert index.evicted > 0 and index.tenant_bytes("tenant-a") <= BOUND
    # the estimate may be off by the containers' spare slots (dicts keep theirs after evictions), not by a factor
    assert held <= 1.2 * BOUND, f"the index holds {held / 2**20:.2f} MB for a bound of {BOUND / 2**20:.0f} MB"


def test_an_entry_read_back_carries_its_vector() -> None:
    vector = unit(np.random.default_rng(2).standard_normal(DIM))
    index = CacheIndex(tenant_max_bytes=BOUND)
    index.apply(CacheEntry.model_validate_json(_message(1, vector)))
    entry = index.get(f"{1:032x}")
    assert entry is not None and np.array_equal(decode_vector(entry.vector), vector)  # the vector it came with
    index.apply(entry.model_copy(update={"flagged": True}))  # a flag of the entry read back (SemanticCache.flag)
    assert index.get(f"{1:032x}") is None and len(index) == 0
