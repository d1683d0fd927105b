"""graph-rag's context after each learned answer, as the tenant's graph grows, on the local Neo4j and Redis
(started if they are not running):

  python -m bench.lexicon_costs [ENTITIES ...] [--rounds N]

For a fresh tenant grown to each size in ENTITIES (default 100 1000 4000; learned triples between new entities, as
graph-ingest writes them), N times (default 40): one more learned triple with two new entities (the graph version
moves, as after every learned answer), then GraphRag.context for a fresh question. Printed per size: this
process's CPU and Neo4j's CPU per context, the writes not counted. For a before/after, run it with an older tree first
on PYTHONPATH (see bench.graphrag_costs); the tenant is deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

from bench.graph_task_costs import graph_rag_under_test, neo4j_cpu_s
from bench.scenarios import full_question

PURGE = """
CALL () { MATCH (e:Entity {tenant: $tenant}) DETACH DELETE e }
CALL () { MATCH (v:GraphVersion {tenant: $tenant}) DELETE v }
"""


async def costs(sizes: list[int], rounds: int) -> None:
    from moe_core.knowledge.graph import GraphStore, Provenance, Triple

    async with graph_rag_under_test("l") as (rag, db, _):
        store, tenant, made, asked = GraphStore(db), f"lex-{uuid.uuid4().hex[:8]}", 0, 0

        async def learn(count: int) -> None:
            nonlocal made
            triples = [Triple(subject=f"Bench Part {made + i} A", relation="PART_OF",
                              object=f"Bench Part {made + i} B", confidence=0.9) for i in range(count)]
            made += count
            prov = Provenance(tenant=tenant, source="extracted", origin=f"o{made}")
            await db.transaction(lambda tx: store.write_many_in(tx, triples, prov))

        try:
            for size in sizes:
                while made * 2 < size:
                    await learn(min(200, (size - made * 2 + 1) // 2))
                await rag.context(tenant, full_question(asked), {})  # the lexicon as it is now, read once
                asked += 1
                cpu = neo = 0.0
                for _ in range(rounds):
                    await learn(1)
                    before_cpu, before_neo = time.process_time(), neo4j_cpu_s()
                    await rag.context(tenant, full_question(asked), {})
                    cpu += time.process_time() - before_cpu
                    neo += neo4j_cpu_s() - before_neo
                    asked += 1
                print(f"{made * 2:6d} entities: graph-rag {cpu / rounds * 1000:6.2f} ms CPU, "
                      f"Neo4j {neo / rounds * 1000:6.2f} ms CPU per context after a learned answer")
        finally:
            await db.write(PURGE, tenant=tenant)

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[100, 1000, 4000])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    asyncio.run(costs(args.sizes, args.rounds))
