"""The record's CPU per Kafka record (codex-lineage's audit store and Postgres), on the local Postgres (started if it
is not running; addresses and credentials from fleetlib, bench.infra):

  python -m bench.audit_costs [REQUESTS [CONCURRENCY [ROUNDS]]]   (default 300 8 6)

REQUESTS full requests, each shaped like the bench's full pipeline (12 records: the request, the plan, three tasks
and their results, the merger's draft, the critic's draft to the guardrail, the answer, the usage; 16 OpenLineage
events derived from them by codex-lineage's Lineage), the records of CONCURRENCY requests interleaved and cut into
consumer batches of 1 to 10 records (a fixed seed), written with AuditStore.append_many into a fresh audit schema;
a checkpoint (no TSA) of the tenant's chain after every 60 requests, as codex-lineage's loop would. Counted: this
process's CPU (the store's client side: statements, canonical JSON, hashes, signatures) and all of Postgres's CPU
(its background and exited workers too: they are the record's cost; the store's own backends shown apart), per
record, for the appends and for the checkpoints (per entry checked), in ROUNDS rounds, and their mean (a GIN
index's pending list is merged now and then by an inserting backend: single rounds vary). The events are derived
before the clock starts.
For a before/after, run it with an older tree first on PYTHONPATH, e.g. `git archive <rev> libs services | tar -x -C
/tmp/before` and `PYTHONPATH=/tmp/before/libs:/tmp/before/services/codex-lineage:. python -m bench.audit_costs`.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import procs
from bench.infra import connect, pid_path

ANSWER = "Kafka is a distributed, partitioned, replicated commit log. " * 20
CHECKPOINT_EVERY = 60  # requests between checkpoints (codex-lineage checkpoints every 60 s)


def postgres_cpu_s() -> float:
    """Every Postgres process's CPU so far: the live ones and, through the postmaster's cutime and cstime, the
    ones that exited meanwhile (autovacuum workers come and go)."""
    root = int(pid_path("postgres").read_text().split()[0])
    fields = Path(f"/proc/{root}/stat").read_text().rsplit(")", 1)[1].split()
    reaped = (int(fields[13]) + int(fields[14])) / procs.CLK_TCK  # cutime, cstime
    return procs.cpu_seconds(procs.tree(root, procs.children_map())) + reaped


def request_messages(rid: str, tenant: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(topic attribute, producer, payload) of one full request, in the order the fleet publishes them."""
    env = {"response_id": rid, "tenant_id": tenant, "schema_version": 1,
           "created_at": datetime.now(UTC).isoformat(), "deadline_at": (datetime.now(UTC) +
                                                                         timedelta(seconds=60)).isoformat()}
    usage = {"prompt_tokens": 180, "completion_tokens": 240, "total_tokens": 420}
    tasks = [{"task_id": f"t{i}", "kind": kind, "category": "general", "instruction": f"Explain part {i} of Kafka."}
             for i, kind in enumerate(("expert", "expert", "graph"))]
    messages: list[tuple[str, str, dict[str, Any]]] = [
        ("requests", "gateway", {**env, "mode": "default", "model": "moe-orchestrator",
                                 "messages": [{"role": "user", "content": "What is Kafka? Explain it fully."}]}),
        ("plans", "planner", {**env, "tasks": tasks, "source": "llm", "planner_model": "planner-model",
                              "usage": usage})]
    messages += [("tasks_graph" if t["kind"] == "graph" else "tasks_expert", "planner", {**env, **t}) for t in tasks]
    messages += [("results", "graph-rag" if t["kind"] == "graph" else "expert-worker",
                  {**env, "task_id": t["task_id"], "kind": t["kind"], "category": "general", "content": ANSWER,
                   "confidence": "high", "model": "expert-model", "server": "local", "usage": usage,
                   "duration_ms": 900}) for t in tasks]
    answer = {"content": ANSWER, "experts_used": ["general"], "usage": usage}
    messages += [("drafts", "merger", {**env, "answer": answer}), ("guard", "critic", {**env, "answer": answer}),
                 ("answers", "guardrail", {**env, **answer, "finish_reason": "stop"}),
                 ("usage", "gateway", {**env, "prompt_tokens": 900, "completion_tokens": 1200, "model": "m"})]
    return messages


def stream(requests: int, concurrency: int, tenant: str) -> list[tuple[Any, list[dict[str, Any]]]]:
    """Every record with its lineage events, the records of `concurrency` requests at a time interleaved."""
    from codex_lineage.lineage import Datasets, Lineage
    from moe_core.audit.records import from_kafka, message_types
    from moe_core.contracts import Topics

    topics = Topics.for_namespace(f"ac{uuid.uuid4().hex[:6]}")
    types, lineage = message_types(topics), Lineage(topics, "moe", Datasets("kafka://k:9092", "neo4j://n:7687",
                                                                            "chroma://c:8000"))
    offsets: dict[str, int] = {}
    out: list[tuple[Any, list[dict[str, Any]]]] = []
    for first in range(0, requests, concurrency):
        batch = [request_messages(f"r-{uuid.uuid4().hex}", tenant) for _ in range(min(concurrency, requests - first))]
        for step in range(max(len(m) for m in batch)):
            for messages in batch:
                if step >= len(messages):
                    continue
                attr, producer, payload = messages[step]
                topic = getattr(topics, attr)
                offsets[topic] = offsets.get(topic, -1) + 1
                record = from_kafka(topic, 0, offsets[topic], int(time.time() * 1000), payload["response_id"].encode(),
                                    json.dumps(payload).encode(), {"x-moe-producer": producer}, types)
                assert record is not None
                out.append((record, lineage.events(record)))
    return out


def batches(items: list[Any], seed: int = 29) -> list[list[Any]]:
    rng, out, i = random.Random(seed), [], 0
    while i < len(items):
        n = rng.randint(1, 10)
        out.append(items[i:i + n])
        i += n
    return out


class Meter:
    """CPU seconds of this process, of the store's own Postgres backends and of all of Postgres, over calls."""

    def __init__(self, backends: list[int]) -> None:
        self.backends = backends
        self.spent = [0.0, 0.0, 0.0]

    async def count(self, call: Any) -> Any:
        pg, own = postgres_cpu_s(), procs.cpu_seconds(self.backends)
        here = time.process_time()  # last: reading /proc is not the record's cost
        result = await call
        here = time.process_time() - here
        own, pg = procs.cpu_seconds(self.backends) - own, postgres_cpu_s() - pg
        self.spent = [s + d for s, d in zip(self.spent, (here, own, pg), strict=True)]
        return result


async def costs(requests: int, concurrency: int, rounds: int) -> None:
    from moe_core.audit.checkpoints import Anchoring, checkpoint
    from moe_core.audit.signer import Signer
    from moe_core.audit.store import AuditStore

    eps = connect(["postgres"])
    signer = Signer.ephemeral()
    store = await AuditStore.connect(eps["postgres"], f"audit_bench_{uuid.uuid4().hex[:8]}", signer=signer)
    anchoring = Anchoring(signer, None)
    tenant = "bench"
    totals: list[float] = []
    try:
        await store.append_many(stream(20, concurrency, tenant))  # warm the connections and the statement cache
        await checkpoint(store, tenant, anchoring)
        backends = [r["pid"] for r in await store.pool.fetch(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' AND usename = current_user")]
        for round_ in range(rounds):
            items = stream(requests, concurrency, tenant)
            cuts = batches(items)
            per_checkpoint = len(cuts) * CHECKPOINT_EVERY // requests or 1
            events = sum(len(e) for _, e in items)
            write, check, checked = Meter(backends), Meter(backends), 0
            for i, cut in enumerate(cuts):
                await write.count(store.append_many(cut))
                if (i + 1) % per_checkpoint == 0 or i == len(cuts) - 1:
                    before = await store.pool.fetchval("SELECT max(size) FROM audit_checkpoints WHERE tenant_id=$1",
                                                       tenant) or 0
                    made = await check.count(checkpoint(store, tenant, anchoring))
                    checked += made.size - before if made is not None else 0
            n = len(items)
            (w_here, w_own, w_pg), (c_here, _, c_pg) = write.spent, check.spent
            totals.append((w_here + w_pg + c_here + c_pg) / n * 1000)
            print(f"round {round_ + 1}: {n} records + {events} events, {len(cuts)} batches. Per record, ms: append "
                  f"{w_here / n * 1000:.3f} here + {w_pg / n * 1000:.3f} Postgres (backends "
                  f"{w_own / n * 1000:.3f}); checkpoint {c_here / n * 1000:.3f} here + {c_pg / n * 1000:.3f} "
                  f"Postgres ({checked} entries, "
                  f"{c_here / max(checked, 1) * 1e6:.1f} us here per entry); total {totals[-1]:.3f} "
                  f"({totals[-1] * n / requests:.2f} per request)")
        mean = statistics.mean(totals)
        print(f"mean total per record {mean:.3f} ms (median {statistics.median(totals):.3f}), per request "
              f"{mean * len(request_messages('r', 't')):.2f} ms")
    finally:
        await store.drop()
        await store.close()


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    asyncio.run(costs(*args, *(300, 8, 6)[len(args):]))
