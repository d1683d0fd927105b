"""Semantic-cache writes share Chroma upserts under load (planner.cache_writes), against the real Chroma:
every entry arrives, a lone write goes out at once, concurrent writes need fewer upsert calls than entries,
and a failing upsert reaches every writer of its batch. Counted with moe_store_seconds (HTTP calls)."""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from moe_core.knowledge.embeddings import chroma_client
from planner.cache_writes import Entry, GroupUpserts
from tests.support.store_calls import store_calls

LOCAL = Path(__file__).resolve().parents[3] / "deploy" / "local"
if str(LOCAL) not in sys.path:
    sys.path.insert(0, str(LOCAL))
from fleetlib import api  # noqa: E402

pytestmark = pytest.mark.infra
WRITERS = 12


@pytest.fixture
async def collection() -> Any:
    api.ensure_up(["chroma"])
    client = await chroma_client(api.endpoints()["chroma"])
    name = f"test-group-{uuid.uuid4().hex[:10]}"
    col = await client.get_or_create_collection(name, embedding_function=None,
                                                configuration={"hnsw": {"space": "cosine"}})
    yield col
    await client.delete_collection(name)


def _entry(i: int) -> Entry:
    vector = [0.0] * 384
    vector[i % 384] = 1.0
    return Entry(f"k{i}", vector, f"question {i}", {"scope": "s", "n": i})


async def test_concurrent_writes_share_upserts_and_all_arrive(collection: Any) -> None:
    writes = GroupUpserts()
    before = store_calls("chroma", "upsert")
    await writes.upsert(collection, _entry(0))  # alone: written at once
    assert store_calls("chroma", "upsert") - before == 1 and (await collection.get(ids=["k0"]))["ids"] == ["k0"]
    before = store_calls("chroma", "upsert")
    await asyncio.gather(*(writes.upsert(collection, _entry(i)) for i in range(1, WRITERS + 1)))
    calls = store_calls("chroma", "upsert") - before
    assert 1 <= calls < WRITERS  # the writers that arrived during the first upsert went out together
    stored = await collection.get(ids=[f"k{i}" for i in range(WRITERS + 1)], include=["metadatas"])
    assert sorted(stored["ids"]) == sorted(f"k{i}" for i in range(WRITERS + 1))
    assert {m["n"] for m in stored["metadatas"]} == set(range(WRITERS + 1))


async def test_a_failed_upsert_reaches_every_writer_of_its_batch(collection: Any) -> None:
    writes = GroupUpserts()
    bad = Entry("bad", [1.0, 2.0], "wrong dimension", {"scope": "s"})  # Chroma refuses a 2-d vector here
    await writes.upsert(collection, _entry(1))
    results = await asyncio.gather(writes.upsert(collection, _entry(2)), writes.upsert(collection, bad),
                                   writes.upsert(collection, _entry(3)), return_exceptions=True)
    assert any(isinstance(r, Exception) for r in results)
    failed = [i for i, r in enumerate(results) if isinstance(r, Exception)]
    assert 1 in failed  # the wrong entry's own writer always hears of it
    await writes.upsert(collection, _entry(4))  # the batcher is usable afterwards
    assert (await collection.get(ids=["k4"]))["ids"] == ["k4"]


async def test_writes_within_the_linger_share_one_upsert(collection: Any) -> None:
    writes = GroupUpserts(linger_s=1.0)  # the planner's write-behind: MOE_CACHE_WRITE_LINGER_MS
    before = store_calls("chroma", "upsert")
    first = asyncio.ensure_future(writes.upsert(collection, _entry(20)))
    await asyncio.sleep(0.1)  # the first writer lingers; the others arrive while no upsert is in flight
    await asyncio.gather(first, *(writes.upsert(collection, _entry(i)) for i in range(21, 24)))
    assert store_calls("chroma", "upsert") - before == 1
    stored = await collection.get(ids=[f"k{i}" for i in range(20, 24)])
    assert sorted(stored["ids"]) == [f"k{i}" for i in range(20, 24)]


class Busy:
    """The collection on busy cores: each upsert takes half a second longer."""

    def __init__(self, collection: Any) -> None:
        self.collection = collection
        self.calls: list[list[str]] = []

    async def upsert(self, **kwargs: Any) -> None:
        self.calls.append(list(kwargs["ids"]))
        await self.collection.upsert(**kwargs)
        await asyncio.sleep(0.5)


async def test_entries_that_arrive_during_a_write_linger_for_the_next_batch(collection: Any) -> None:
    """Before, the entries that arrived during a write went out as soon as it ended: on busy cores, one or two
    at a time (python -m bench.cache_write_costs: 2.1 entries per call)."""
    writes, busy = GroupUpserts(linger_s=1.0), Busy(collection)
    first = asyncio.ensure_future(writes.upsert(busy, _entry(30)))
    await asyncio.sleep(1.2)  # the first batch is being written (1.0 s of linger, then 0.5 s of writing)
    during = asyncio.ensure_future(writes.upsert(busy, _entry(31)))
    await asyncio.sleep(0.7)  # the write ended; the next batch lingers
    await asyncio.gather(first, during, writes.upsert(busy, _entry(32)))
    assert busy.calls == [["k30"], ["k31", "k32"]]


async def test_a_full_batch_does_not_wait_for_the_linger(collection: Any) -> None:
    writes = GroupUpserts(max_batch=4, linger_s=60.0)
    await asyncio.wait_for(asyncio.gather(*(writes.upsert(collection, _entry(i)) for i in range(40, 44))), 30)
    stored = await collection.get(ids=[f"k{i}" for i in range(40, 44)])
    assert sorted(stored["ids"]) == [f"k{i}" for i in range(40, 44)]
