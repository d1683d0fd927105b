"""Chroma's CPU per semantic-cache entry written behind, at a steady arrival rate:

  python -m bench.cache_write_costs [RATE] [SECONDS] [LINGER_MS]

Against the local fleet's Chroma (started if it is not running): the planner's group commit
(planner.cache_writes.GroupUpserts, with the write-behind's linger) receives RATE entries a second for SECONDS,
each from its own writer as the write-behind consumer's concurrent messages do, into a fresh collection that
already holds 2,000 entries. Reports the upsert calls, the entries per call, and the Chroma server's CPU per
entry (its /proc/<pid>/stat, which includes its idle background work over the same time).
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
import uuid
from typing import Any

import uvloop

from bench.infra import connect, pid_path
from moe_core.knowledge.embeddings import chroma_client
from planner.cache_writes import Entry, GroupUpserts

DIM = 384
PRELOAD = 2000


def _proc_cpu_s(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime of all threads


def _entry(rng: random.Random, n: int) -> Entry:
    vector = [rng.gauss(0.0, 1.0) for _ in range(DIM)]
    return Entry(f"e{n}-{uuid.uuid4().hex[:8]}", vector, f"what is question number {n} about, really?",
                 {"scope": "bench", "tenant_id": "bench", "mode": "moe-orchestrator", "n": n})


class Counting:
    """The collection, counting its upsert calls."""

    def __init__(self, collection: Any) -> None:
        self.collection = collection
        self.calls = 0

    async def upsert(self, **kwargs: Any) -> None:
        self.calls += 1
        await self.collection.upsert(**kwargs)


async def measure(rate: float, seconds: float, linger_s: float) -> None:
    client = await chroma_client(connect(["chroma"])["chroma"])
    pid = int(pid_path("chroma").read_text().strip())
    name = f"bench-writes-{uuid.uuid4().hex[:10]}"
    collection = await client.get_or_create_collection(name, embedding_function=None,
                                                       configuration={"hnsw": {"space": "cosine"}})
    rng = random.Random(7)
    try:
        for start in range(0, PRELOAD, 250):
            batch = [_entry(rng, n) for n in range(start, start + 250)]
            await collection.upsert(ids=[e.key for e in batch], embeddings=[e.embedding for e in batch],
                                    documents=[e.document for e in batch], metadatas=[e.metadata for e in batch])
        await asyncio.sleep(2)  # Chroma's own work on the preload settles
        counted = Counting(collection)
        writes = GroupUpserts(linger_s=linger_s)
        entries = [_entry(rng, PRELOAD + n) for n in range(int(rate * seconds))]
        cpu = _proc_cpu_s(pid)
        began = time.perf_counter()
        writers = []
        for i, entry in enumerate(entries):  # a steady arrival, each entry its own writer
            await asyncio.sleep(max(0.0, began + i / rate - time.perf_counter()))
            writers.append(asyncio.ensure_future(writes.upsert(counted, entry)))
        await asyncio.gather(*writers)
        used = _proc_cpu_s(pid) - cpu
        n = len(entries)
        print(f"{n} entries at {rate:g}/s, linger {linger_s * 1000:g} ms: {counted.calls} upsert calls, "
              f"{n / counted.calls:.1f} entries per call, Chroma {used * 1000 / n:.2f} ms of CPU per entry")
    finally:
        await client.delete_collection(name)


if __name__ == "__main__":
    args = sys.argv[1:]
    uvloop.run(measure(float(args[0]) if args else 30.0, float(args[1]) if len(args) > 1 else 20.0,
                       (float(args[2]) if len(args) > 2 else 1000.0) / 1000))
