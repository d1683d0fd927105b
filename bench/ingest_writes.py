"""graph-ingest's Neo4j work per learned answer, counted (issue 52):

  python -m bench.ingest_writes [N] [--grow G] [--url bolt://HOST:PORT --pid PID]

For N fresh answers, each with the two facts about new entities a bench answer teaches (bench.scenarios.LEARNED),
graph-ingest's Neo4j work as on_ingest does it: the plan's read (plan_read.read_plan, with the write policy's domain
keys) and the write transaction (GraphStore.write_many_counted_in with the tenant's size after it; a bench answer
carries no insight of the judge's: no :Synthesis statement). The tenant is first grown by G answers, as a bench run
grows one (a count of it costs a db hit per entity and relation). Counted per answer: statements and write
transactions, the db hits of each statement (PROFILE of the statements of 20 answers just before the N: the same
rows), and, as an indication only, Neo4j's CPU. By default on the fleet's local Neo4j (started if not running; CPU of
every Neo4j process on the host); `--url` and `--pid` point it at another one, e.g. a private Neo4j, where the CPU is
that process's alone. For a before/after, run an older tree on PYTHONPATH (see bench.graphrag_costs), alternating.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import time
from pathlib import Path
from typing import Any

from bench.graph_task_costs import neo4j_cpu_s
from bench.scenarios import LEARNED

PROFILED = 20
TENANT = "bench-ingest-writes"  # one name: the same uids and relation ids in every run


def _hits(plan: Any) -> int:
    return int(plan.get("dbHits", 0)) + sum(_hits(child) for child in plan.get("children", []))


def _cpu_of(pid: int | None) -> float:
    if pid is None:
        return neo4j_cpu_s()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _label(query: str) -> str:
    return " ".join(query.split())[:40]


class Learner:
    """graph-ingest's Neo4j work for one learned answer of `tenant` (the two facts of bench.scenarios.LEARNED about
    entities new to it), as GraphIngest.on_ingest and ._write run it: the plan's read, then one write transaction."""

    def __init__(self, db: Any, tenant: str) -> None:
        from moe_core.knowledge.graph import GraphStore
        from moe_core.knowledge.graph.measure import Sizes

        self.db, self.tenant, self.store, self.sizes, self.transactions = db, tenant, GraphStore(db), Sizes(), 0

    async def answer(self, i: int) -> None:
        from moe_core.knowledge.graph import Provenance, Triple
        from moe_core.knowledge.graph.plan_read import read_plan
        from moe_core.policy.domains import triple_keys

        triples = [Triple.model_validate({k: v.format(seq=i) if isinstance(v, str) else v for k, v in t.items()})
                   for t in LEARNED["triples"]]
        prov = Provenance(tenant=self.tenant, source="extracted", domain="general", origin=f"w{i}")
        read = await read_plan(self.db, self.tenant, triples, self.sizes, triple_keys(triples))
        # the count the read holds, as graph-ingest passes it (a tree from before `since` counts after every write)
        since = {"since": read.counted} if hasattr(read, "counted") else {}

        async def work(tx: Any) -> Any:
            return (await self.store.write_many_counted_in(tx, triples, prov, read.resolved.uids, count=True,
                                                           **since))[1]

        self.transactions += 1
        self.sizes.counted(self.tenant, await self.db.transaction(work))


async def costs(n: int, grow: int, url: str | None, pid: int | None) -> None:
    from neo4j import READ_ACCESS

    from moe_core.knowledge.graph import GraphDB, driver
    from moe_core.knowledge.graph import store as store_module
    from moe_core.knowledge.graph.lifecycle import prepare_graph
    from tests.graph.helpers import purge

    driver.QUERY_TIMEOUT_S = 120.0  # a cold Neo4j plans the big statements slowly on a busy machine
    if url is None:
        from bench.infra import connect

        db = GraphDB(connect(["neo4j"])["neo4j"], *importlib.import_module("tests.support.store_auth").neo4j_auth())
    else:
        db = GraphDB(url)
    learner = Learner(db, TENANT)
    answer, store = learner.answer, learner.store
    seen: list[str] = []

    try:
        await prepare_graph(db, seed=True)
        await purge(db, TENANT)
        for i in range(grow):  # the tenant as a bench run leaves it (also warms Neo4j's plans and JIT)
            await answer(i)
        real_read, real_tx_data = db.read, store_module.tx_data

        async def read(query: Any, **params: Any) -> list[dict[str, Any]]:
            seen.append(_label(query))
            if not profiling:
                return await real_read(query, **params)
            async with db.driver.session(database=db.database, default_access_mode=READ_ACCESS) as session:
                result = await session.run("PROFILE " + query, params)
                rows = await result.data()
                hits[_label(query)] = hits.get(_label(query), 0) + _hits((await result.consume()).profile or {})
            return rows

        async def tx_data(tx: Any, query: Any, **params: Any) -> list[dict[str, Any]]:
            seen.append(_label(query))
            if not profiling:
                return await real_tx_data(tx, query, **params)
            result = await tx.run("PROFILE " + query, params)
            rows = await result.data()
            hits[_label(query)] = hits.get(_label(query), 0) + _hits((await result.consume()).profile or {})
            return rows

        db.read, store_module.tx_data = read, tx_data  # type: ignore[method-assign]
        hits: dict[str, int] = {}
        per: dict[str, int] = {}
        cpu, measured, profiling = 0.0, 0, True
        for i in range(grow, grow + PROFILED):  # PROFILE of the answers' own statements (the rows are the same)
            await answer(i)
        profiling = False
        for i in range(grow + PROFILED, grow + PROFILED + n):
            seen.clear()
            c0, tx0 = _cpu_of(pid), learner.transactions
            await answer(i)
            cpu += _cpu_of(pid) - c0
            measured += learner.transactions - tx0
            for label in seen:
                per[label] = per.get(label, 0) + 1
        db.read, store_module.tx_data = real_read, real_tx_data  # type: ignore[method-assign]
        size = await store.db.read("MATCH (e:Entity {tenant: $t}) RETURN count(e) AS n", t=TENANT)
        print(f"{n} answers of {len(LEARNED['triples'])} triples, tenant grown by {grow} answers first "
              f"({size[0]['n']} entities); per answer:")
        for label, count in per.items():
            print(f"  {label!r}: statements {count / n:.2f}")
        print(f"  write transactions {measured / n:.2f}")
        for label, h in hits.items():
            print(f"  db hits ({PROFILED} answers before these, profiled) {label!r}: {h / PROFILED:.1f}")
        print(f"  Neo4j CPU per answer (indication; {'pid ' + str(pid) if pid else 'every Neo4j process'}): "
              f"{cpu / n * 1000:.2f} ms")
        await purge(db, TENANT)
    finally:
        await db.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_writes", description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=200)
    parser.add_argument("--grow", type=int, default=1000)
    parser.add_argument("--url", help="another Neo4j's Bolt URL, without authentication")
    parser.add_argument("--pid", type=int, help="that Neo4j's process id (its CPU alone)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    asyncio.run(costs(args.n, args.grow, args.url, args.pid))
    print(f"  ({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
