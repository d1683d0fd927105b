"""Neo4j warmed to its steady state before the cells: graph-rag's own reads for fresh full questions, then
graph-ingest's statements for as many learned answers.

Neo4j runs on the JVM, whose JIT compiles the Cypher runtime's hot code only after thousands of queries:
`python -m bench.graph_task_costs` shows Neo4j's CPU per full question falling from about 18 ms in its first 300
questions to about 2 ms by the sixth 300, and the cells used to measure that warm-up. A fleet in production
has served many more queries than that since Neo4j started, so the bench measures what it costs then. The
fleet's Python services need no such warm-up (each cell starts with its own unrecorded requests).

Learning's statements (the plan's read and the write transaction: MERGE, UNWIND, index updates, the planner for
them) are other code than the reads: without them in the warm-up they were compiled during the measured cells, whose
few hundred learned answers are the start of their warm-up (thousands of JIT compiles per 300 answers at first, ~500
after ~1,500: `python -m bench.neo4j_threads`, session 43). They run for fresh answers in a tenant of their own
(bench.ingest_writes.Learner), purged afterwards.

The reads are the real ones (graph_rag.app.GraphRag.context: the graph versions, then facts and requirement
chains in one query) for questions the cells never ask, in a namespace of their own (its context cache keys
are deleted afterwards). It stops after `questions` or `seconds`, whichever comes first, and reports what
it did, Neo4j's CPU per question over the first and the last hundred included (`python -m bench --neo4j-warm N`;
0 measures Neo4j as it is).
"""

from __future__ import annotations

import importlib
import itertools
import time
import uuid
from typing import Any

from bench.graph_task_costs import neo4j_cpu_s
from bench.scenarios import full_question

SECONDS = 40.0
FIRST_UNASKED = 1_000_000  # the cells' full questions count up from 0
WINDOW = 100


async def warm(eps: dict[str, str], tenant: str, questions: int, seconds: float = SECONDS) -> dict[str, Any]:
    """Run graph-rag's context read for fresh questions of `tenant` until Neo4j is warm (see the module)."""
    from graph_rag.app import GraphRag
    from graph_rag.settings import GraphRagSettings
    from moe_core.knowledge.graph import GraphDB
    from moe_core.runtime.bus import Bus
    from moe_core.runtime.stores import redis_client
    neo4j_auth = importlib.import_module("tests.support.store_auth").neo4j_auth

    settings = GraphRagSettings(topic_namespace=f"warm{uuid.uuid4().hex[:6]}", neo4j_url=eps["neo4j"],
                                redis_url=eps["redis"], kafka_bootstrap=eps["kafka"], graph_documents=False)
    redis, db = redis_client(settings.redis_url), GraphDB(settings.neo4j_url, *neo4j_auth())
    rag = GraphRag(settings, Bus(settings), db, redis, None)
    window = max(1, min(WINDOW, questions))
    started, done, marks = time.monotonic(), 0, [neo4j_cpu_s()]
    try:
        while done < questions and time.monotonic() - started < seconds:
            await rag.context(tenant, full_question(FIRST_UNASKED + done), {})
            done += 1
            if done % window == 0:
                marks.append(neo4j_cpu_s())
    finally:
        keys = [k async for k in redis.scan_iter(f"*{settings.topic_namespace}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        await db.close()
    per_question = [round((b - a) * 1000 / window, 2) for a, b in itertools.pairwise(marks)]
    return {"questions": done, "seconds": round(time.monotonic() - started, 1),
            "neo4j_cpu_ms_first": per_question[0] if per_question else None,
            "neo4j_cpu_ms_last": per_question[-1] if per_question else None,
            "learned": await _learn(eps, questions, seconds)}


async def _learn(eps: dict[str, str], answers: int, seconds: float) -> dict[str, Any]:
    """graph-ingest's statements for up to `answers` fresh learned answers (bench.ingest_writes.Learner) in a tenant
    of their own, purged afterwards; Neo4j's CPU per answer over the first and the last hundred."""
    from bench.ingest_writes import Learner
    from moe_core.knowledge.graph import GraphDB
    from moe_core.knowledge.graph.lifecycle import prepare_graph
    from tests.graph.helpers import purge

    db = GraphDB(eps["neo4j"], *importlib.import_module("tests.support.store_auth").neo4j_auth())
    learner = Learner(db, f"bench-warm-{uuid.uuid4().hex[:8]}")
    window = max(1, min(WINDOW, answers))
    started, done, marks = time.monotonic(), 0, [neo4j_cpu_s()]
    try:
        await prepare_graph(db, seed=True)
        while done < answers and time.monotonic() - started < seconds:
            await learner.answer(done)
            done += 1
            if done % window == 0:
                marks.append(neo4j_cpu_s())
        await purge(db, learner.tenant)
    finally:
        await db.close()
    per_answer = [round((b - a) * 1000 / window, 2) for a, b in itertools.pairwise(marks)]
    return {"answers": done, "seconds": round(time.monotonic() - started, 1),
            "neo4j_cpu_ms_first": per_answer[0] if per_answer else None,
            "neo4j_cpu_ms_last": per_answer[-1] if per_answer else None}
