"""What graph-ingest's learning costs per message, on the local Neo4j, OPA and Redis (running: `make up`):

  python -m tests.graph.graph_ingest.ingest_costs [N] [TRIPLES] [ENTITIES] [AT_ONCE]

GraphIngest.on_ingest for N fresh answers of TRIPLES technical triples each (their extraction already remembered,
as on a redelivery: no model call), six rounds: wall time, this process's CPU (graph-ingest's Python), Neo4j's
and OPA's CPU per message. The audit events are serialised as for Kafka but not sent (the same events before and
after; Kafka's cost is not what this measures). Neo4j's JIT warms up over the first rounds: compare the last ones.
ENTITIES (default 0): the tenant holds that many entities and relations before the first round (a tenant of
realistic size: the bench's largest held about 1,100). For a before/after, run the same command on the older tree
(issue 52: one query for each check of an answer's triples, one request to OPA, one transaction). AT_ONCE (default
1): answers handed to on_ingest at once, as the runtime hands a replica up to MOE_CONSUMER_IN_FLIGHT; the write
transactions the driver ran again (a deadlock) are counted. INGEST_COSTS_NEO4J=bolt://HOST:PORT and
INGEST_COSTS_NEO4J_HOME=DIR (its --home-dir, for its CPU) use another Neo4j, without authentication (a private one)."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.infra import endpoints, fleetconfig
from moe_core.knowledge.graph.driver import GraphDB
from tests.graph.graph_ingest.test_learning_journey import ingest_event


def cpu_s(marker: bytes) -> float:
    """The CPU seconds of every process whose command line has `marker`."""
    total = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if marker in (proc / "cmdline").read_bytes():
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
        except OSError:  # gone meanwhile
            continue
    return total / os.sysconf("SC_CLK_TCK")


class _Serialised:
    """The bus, as far as graph-ingest's audit events go: each serialised, none sent."""

    def __init__(self) -> None:
        self.topics, self.sent = SimpleNamespace(audit="audit"), 0

    async def publish(self, message: Any, topic: str) -> None:
        message.model_dump_json()
        self.sent += 1


async def build_tenant(db: GraphDB, tenant: str, entities: int) -> list[str]:
    """ENTITIES entities of the tenant, each related to the next (a chain: no hub), written as imports write them."""
    from moe_core.knowledge.graph import GraphStore, Provenance
    from moe_core.knowledge.graph.names import entity_uid, normalize
    from moe_core.knowledge.graph.store import CREATE_ENTITIES

    names = [f"Filler {tenant} {i}" for i in range(entities)]
    store, prov = GraphStore(db), Provenance(tenant=tenant, source="extracted", domain="technical", origin="seed")
    for start in range(0, entities, 500):
        chunk = names[start:start + 500]
        await GraphDB.write(db, CREATE_ENTITIES, rows=[{"uid": entity_uid(tenant, normalize(n)), "name": n,
                                                        "key": normalize(n)} for n in chunk],
                            tenant=tenant, type="Concept", domain="technical", source="extracted", now=time.time())
        rows = [{"subject": entity_uid(tenant, normalize(a)), "object": entity_uid(tenant, normalize(b)),
                 "type": "RELATED_TO", "confidence": 0.9, "domain": "technical"}
                for a, b in zip(chunk, names[start + 1:start + 501], strict=False)]
        await GraphDB.transaction(db, lambda tx, rows=rows: store.assert_many_in(tx, rows, prov))  # type: ignore
    return names


async def costs(n: int, per_answer: int, entities: int = 0, at_once: int = 1) -> None:
    from graph_ingest.app import GraphIngest
    from graph_ingest.settings import GraphIngestSettings
    from moe_core.knowledge.graph import GraphDB
    from moe_core.knowledge.graph.lifecycle import prepare_graph
    from moe_core.runtime.idempotency import Memo
    from moe_core.runtime.stores import redis_client
    neo4j_auth = importlib.import_module("tests.support.store_auth").neo4j_auth

    eps = endpoints()  # the running ones: starting them is fleetctl's (make up)
    # this data directory's Neo4j and OPA only (MOE_DATA_DIR: a private set beside the shared one, as other
    # clones on the machine may run their own)
    neo4j_mark = f"--home-dir={os.environ.get('INGEST_COSTS_NEO4J_HOME', fleetconfig.DATA / 'neo4j')}".encode()
    opa_mark = eps["opa-binary"].encode()
    ns = f"c{uuid.uuid4().hex[:6]}"
    url = os.environ.get("INGEST_COSTS_NEO4J", eps["neo4j"])
    settings = GraphIngestSettings(topic_namespace=ns, neo4j_url=url, redis_url=eps["redis"],
                                   opa_url=eps["opa"], graph_trust_recompute_s=0)
    redis = redis_client(settings.redis_url)
    db = GraphDB(url) if "INGEST_COSTS_NEO4J" in os.environ else GraphDB(url, *neo4j_auth())
    runs = _count_runs(db)
    await prepare_graph(db, seed=True)
    memo = Memo(redis, f"graph-ingest:triples:{ns}", 3600)
    ingest = GraphIngest(settings, _Serialised(), db, None, memo)  # type: ignore[arg-type]
    noted = ingest.sizes.counted

    def note(tenant: str, counted: Any) -> None:  # a write's count of the whole tenant (steps 0), or carried
        runs["whole counts" if counted.steps == 0 else "carried counts"] += 1
        noted(tenant, counted)

    ingest.sizes.counted = note  # type: ignore[method-assign]
    tenant = f"cost-{ns}"
    try:
        if entities:
            await build_tenant(db, tenant, entities)
        for round_ in range(6):
            events = []
            for i in range(n):
                m = f"{ns}{round_}x{i}"
                event = ingest_event(tenant, m, knowledge_type="technical", source_expert="technical")
                triples = [{"subject": f"Frobnik {m} {k}", "relation": "PART_OF", "object": f"Kubernetes Cluster {m}",
                            "confidence": 0.9} for k in range(per_answer)]
                await memo.put_first(event.response_id, json.dumps(triples))
                events.append(event)
            runs.clear()
            cpu, wall, neo, opa = time.process_time(), time.perf_counter(), cpu_s(neo4j_mark), cpu_s(opa_mark)
            for start in range(0, n, at_once):
                await asyncio.gather(*(ingest.on_ingest(e) for e in events[start:start + at_once]))
            print(f"round {round_ + 1}: {n} answers of {per_answer} triples: wall "
                  f"{(time.perf_counter() - wall) / n * 1000:6.2f} ms, graph-ingest "
                  f"{(time.process_time() - cpu) / n * 1000:6.2f} ms CPU, Neo4j "
                  f"{(cpu_s(neo4j_mark) - neo) / n * 1000:6.2f} ms CPU, OPA "
                  f"{(cpu_s(opa_mark) - opa) / n * 1000:6.2f} ms CPU per answer; write transactions "
                  f"{runs['transactions']}, run again {runs['runs'] - runs['transactions']}, counting the tenant "
                  f"{runs['whole counts']}", flush=True)
    finally:
        await db.write("MATCH (n) WHERE n.tenant = $tenant DETACH DELETE n", tenant=tenant)
        await redis.delete(*[k async for k in redis.scan_iter(f"*{ns}*")] or ["-"])
        await redis.aclose()
        await ingest.close()
        await db.close()


def _count_runs(db: GraphDB) -> Counter[str]:
    """Write transactions, and the runs of their work (the driver runs it again after a deadlock)."""
    counts, transaction = Counter[str](), db.transaction

    async def counting(work: Any) -> Any:
        counts["transactions"] += 1

        async def run(tx: Any) -> Any:
            counts["runs"] += 1
            return await work(tx)

        return await transaction(run)

    db.transaction = counting  # type: ignore[method-assign]
    return counts


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    asyncio.run(costs(*(args + [40, 4, 0, 1][len(args):])))
