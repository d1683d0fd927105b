"""graph-rag's task on the bench's full questions, on the local Neo4j and Redis (started if they are not running):

  python -m bench.graph_task_costs [N]

First one read (the graph versions, as every task does) three ways: a managed transaction (`execute_query`, what
GraphDB.read used to run), an auto-commit query with the same bookmarks (what it runs now) and `RETURN 1` (Neo4j's
floor per query). Then GraphRag.context for N fresh full questions (no documents, the seeded ontology), six
rounds: wall time, this process's CPU and Neo4j's CPU per question. Neo4j's JIT warms up over the first rounds:
compare the last ones. For a before/after, run it with an older tree first on PYTHONPATH (see
bench.graphrag_costs).
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bench.infra import connect
from bench.scenarios import full_question


def neo4j_cpu_s() -> float:
    total = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if b"org.neo4j" in (proc / "cmdline").read_bytes():
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
        except OSError:  # gone meanwhile
            continue
    return total / os.sysconf("SC_CLK_TCK")


@asynccontextmanager
async def graph_rag_under_test(prefix: str) -> AsyncIterator[tuple[Any, Any, Any]]:
    """graph-rag's task in this process on the local Neo4j and Redis, a fresh topic namespace, the seeded ontology
    and no documents: (GraphRag, GraphDB, Redis); its Redis keys deleted and its clients closed afterwards. The
    caller imports graph_rag first with the tree it measures on PYTHONPATH (see bench.graphrag_costs)."""
    from graph_rag.app import GraphRag
    from graph_rag.settings import GraphRagSettings
    from moe_core.knowledge.graph import GraphDB
    from moe_core.knowledge.graph.lifecycle import prepare_graph
    from moe_core.runtime.bus import Bus
    from moe_core.runtime.stores import redis_client
    neo4j_auth = importlib.import_module("tests.support.store_auth").neo4j_auth

    eps = connect(["kafka", "redis", "neo4j"])
    settings = GraphRagSettings(topic_namespace=f"{prefix}{uuid.uuid4().hex[:6]}", neo4j_url=eps["neo4j"],
                                redis_url=eps["redis"], kafka_bootstrap=eps["kafka"], graph_documents=False)
    redis, db = redis_client(settings.redis_url), GraphDB(settings.neo4j_url, *neo4j_auth())
    try:
        await prepare_graph(db, seed=True)
        yield GraphRag(settings, Bus(settings), db, redis, None), db, redis
    finally:
        await redis.delete(*[k async for k in redis.scan_iter(f"*{settings.topic_namespace}*")] or ["-"])
        await redis.aclose()
        await db.close()


async def per_call(label: str, n: int, call: Callable[[int], Awaitable[object]], warm: int = 50) -> None:
    for i in range(warm):
        await call(i)
    cpu, wall, neo = time.process_time(), time.perf_counter(), neo4j_cpu_s()
    for i in range(n):
        await call(i)
    print(f"{label:42s} wall {(time.perf_counter() - wall) / n * 1000:5.2f} ms, this process "
          f"{(time.process_time() - cpu) / n * 1000:5.2f} ms CPU, Neo4j {(neo4j_cpu_s() - neo) / n * 1000:5.2f} ms CPU")


async def costs(n: int) -> None:
    from neo4j import READ_ACCESS, RoutingControl

    from moe_core.knowledge.graph import visible_tenants
    from moe_core.knowledge.graph.store import READ_VERSIONS

    async with graph_rag_under_test("g") as (rag, db, _):
        driver, params = db.driver, {"tenants": visible_tenants("bench")}

        async def managed(_: int) -> object:
            return await driver.execute_query(READ_VERSIONS, parameters_=params, routing_=RoutingControl.READ,
                                              database_=db.database)

        async def floor(_: int) -> object:
            async with driver.session(database=db.database, default_access_mode=READ_ACCESS) as session:
                return await (await session.run("RETURN 1 AS one")).data()

        for _ in range(2):
            await per_call("versions, managed transaction (execute_query)", n, managed)
            await per_call("versions, auto-commit (GraphDB.read)", n, lambda _: db.read(READ_VERSIONS, **params))
            await per_call("RETURN 1, auto-commit", n, floor)
        for round_ in range(6):
            first = round_ * n  # fresh questions in every round: none is in the context cache yet

            async def context(i: int, first: int = first) -> object:
                return await rag.context("bench", full_question(first + i), {})

            await per_call(f"graph-rag context, round {round_ + 1}", n, context, warm=0)

if __name__ == "__main__":
    asyncio.run(costs(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
