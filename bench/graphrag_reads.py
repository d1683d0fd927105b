"""graph-rag's Neo4j reads per full request, counted, on the local Neo4j and Redis (started if not running):

  python -m bench.graphrag_reads [N [FILE: the context texts, as JSON]]

For N fresh full questions (bench.scenarios) GraphRag.context runs as in a full request with learning, in a tenant
grown as a bench run grows one: before each question an answer's learned facts are written (what graph-ingest does
after the previous answer: the tenant's graph version has moved) and gap-healer's classification of the question's
subjects (a later question about one reaches its class and the class's other members). Counted per question:
graph-rag's statements (GraphDB.read calls), the rows and bytes (JSON of what the driver returned) they brought back,
the db hits of each statement (PROFILE, run apart, right after the question), and, as an indication only, this
process's and Neo4j's CPU (every Neo4j process on the host). The context texts are printed as a digest: the same
digest for two trees means the same contexts (one tenant name: the same relation ids in every run). For a
before/after, run an older tree on PYTHONPATH (see bench.graphrag_costs), alternating.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench.graph_task_costs import graph_rag_under_test, neo4j_cpu_s
from bench.scenarios import _pairs, full_question

PROFILED = 20


def _hits(plan: dict[str, Any]) -> int:
    return int(plan.get("dbHits", 0)) + sum(_hits(child) for child in plan.get("children", []))


async def costs(n: int, out: str | None) -> None:
    from moe_core.knowledge.graph import GraphStore, Provenance, Triple
    from tests.graph.helpers import purge

    async with graph_rag_under_test("r") as (rag, db, _):
        store, real, pairs = GraphStore(db), db.read, _pairs()
        seen: list[tuple[str, dict[str, Any], list[dict[str, Any]]]] = []

        async def counted(query: Any, **params: Any) -> list[dict[str, Any]]:
            rows = await real(query, **params)
            seen.append((query, params, rows))
            return rows

        # a tenant of its own, grown as a bench run grows one (bench.scenarios): an answer's two learned facts about
        # new entities, and gap-healer's classification of the question's subjects as chemical elements (so a later
        # question about one reaches the class and, two hops away, its other members); the same graph in every run
        tenant = "bench-graphrag-reads"  # one name: the same relation ids, ties ranked alike in every run
        await purge(db, tenant)

        async def learned(i: int) -> None:
            prov = Provenance(tenant=tenant, source="extracted", origin=f"r{i}")
            triples = [Triple(subject=f"bench subject {i}", relation="IS_A", object=f"bench kind {i}", confidence=0.9),
                       *(Triple(subject=name, relation="IS_A", object="Chemical Element", confidence=0.9)
                         for name in pairs[i % len(pairs)])]
            for triple in triples:
                await store.write_triple(triple, prov)
        for i in range(200):  # the graph grown by earlier questions (more often asked again than not)
            await learned(i)
        for i in range(20):  # warm: the lexicons read once, Neo4j's plans cached
            await rag.context(tenant, full_question(10_000 + i), {})
        db.read = counted
        digest, hits = hashlib.sha256(), dict[str, int]()

        async def profile(query: str, params: dict[str, Any]) -> None:
            async with db.driver.session(database=db.database) as session:
                summary = await (await session.run("PROFILE " + query, params)).consume()
            label = " ".join(query.split())[:40]
            hits[label] = hits.get(label, 0) + _hits(summary.profile or {})

        per: dict[str, dict[str, int]] = {}
        texts: list[str] = []
        cpu, neo, busy = 0.0, 0.0, 0.0
        for i in range(n):
            await learned(200 + i)
            seen.clear()
            c0, n0, w0 = time.process_time(), neo4j_cpu_s(), time.perf_counter()
            ctx = await rag.context(tenant, full_question(i), {})
            cpu, neo, busy = cpu + time.process_time() - c0, neo + neo4j_cpu_s() - n0, busy + time.perf_counter() - w0
            digest.update(ctx["content"].encode())
            texts.append(ctx["content"])
            for query, _, rows in seen:
                label = " ".join(query.split())[:40]
                each = per.setdefault(label, {"statements": 0, "rows": 0, "bytes": 0})
                each["statements"] += 1
                each["rows"] += sum(len(v) if isinstance(v, list) else 1 for r in rows for v in r.values())
                each["bytes"] += len(json.dumps(rows, default=str))
            if i < PROFILED:  # right after the question: the graph as its statements saw it
                for query, params, _ in seen:
                    await profile(query, params)
        db.read = real
        print(f"{n} full questions, a learned triple before each; per question:")
        for label, each in per.items():
            print(f"  {label!r}: " + ", ".join(f"{k} {v / n:.2f}" for k, v in each.items()))
        for label, h in hits.items():
            print(f"  db hits per question (the first {min(n, PROFILED)} profiled) {label!r}: "
                  f"{h / min(n, PROFILED):.1f}")
        print(f"  CPU per question (indication): this process {cpu / n * 1000:.2f} ms, Neo4j {neo / n * 1000:.2f} ms,"
              f" wall {busy / n * 1000:.2f} ms")
        print(f"  contexts digest {digest.hexdigest()[:16]}")
        await purge(db, tenant)
        if out:
            await asyncio.to_thread(Path(out).write_text, json.dumps(texts, indent=1))


if __name__ == "__main__":
    asyncio.run(costs(int(sys.argv[1]) if len(sys.argv) > 1 else 100, sys.argv[2] if len(sys.argv) > 2 else None))
