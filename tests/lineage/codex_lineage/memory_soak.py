"""codex-lineage's memory against the entries it records (issue 52): codex-lineage alone, in a topic namespace and an
audit schema of its own on the shared infrastructure, fed full-pipeline requests' messages (the request, its plan,
two expert results, the answer, a learning event), each published by the stage that sends it in the fleet and signed
with that stage's producer key. Its resident memory (RSS and the anonymous part, RssAnon, of its process tree) is
sampled against the entries its tenant's chain holds.

    .venv/bin/python -m tests.lineage.codex_lineage.memory_soak --requests 6000 --rate 12 --sample-s 15

Prints one line per sample (seconds, entries, RSS MB, RssAnon MB) and a least-squares slope of RssAnon per 10,000
entries over the second half. `--env K=V` sets codex-lineage's settings (e.g. MOE_LINEAGE_TRACEMALLOC_S=60: its
log, named at the end, then holds the allocation sites that grew). `--witness`: every checkpoint is cosigned by a
witness of the run's own (the omniwitness, tests.support.witness), as in a deployment: each one then reads the
stretch's leaves again for the consistency proof (moe_core.audit.tree.proof); without it no proof is made (as in
`make bench`'s fleet)."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

import asyncpg

from bench.infra import connect, kafka_admin_env
from bench.procs import rss_mb
from bench.record import record_env
from bench.runner import _delete_topics
from tests.support.fleet import Fleet
from tests.support.namespaces import new_namespace

TEXT = "The answer, with its reasoning and the sources it read. " * 20  # ~1.1 kB, as an expert's reply
SENDERS = ("gateway", "planner", "expert-worker", "merger", "graph-ingest")


def request_messages(rid: str, tenant: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(sender, topic attribute, message type, payload) of one full-pipeline request."""
    now = datetime.now(UTC).isoformat()
    usage = {"prompt_tokens": 180, "completion_tokens": 240, "total_tokens": 420}
    versions = {"service": "x", "config": "sha256:" + "ab" * 32, "prompts": {"plan": "sha256:" + "cd" * 32}}
    env = {"response_id": rid, "tenant_id": tenant, "created_at": now, "started_at": now, "versions": versions}
    tasks = [{"task_id": f"{rid}-t{i}", "kind": "expert", "category": "general", "prompt": TEXT[:300]} for i in (1, 2)]
    return [
        ("gateway", "requests", "ChatRequest", {**env, "mode": "moe-orchestrator",
                                                "messages": [{"role": "user", "content": TEXT[:400]}]}),
        ("planner", "plans", "Plan", {**env, "source": "llm", "planner_model": "planner-model", "usage": usage,
                                      "tasks": tasks}),
        *[("expert-worker", "results", "TaskResult", {**env, "task_id": t["task_id"], "kind": "expert",
                                                      "category": "general", "model": "expert-model",
                                                      "server": "bench", "content": TEXT, "usage": usage,
                                                      "confidence": "high", "duration_ms": 120}) for t in tasks],
        ("merger", "answers", "Answer", {**env, "content": TEXT, "experts_used": ["general"], "usage": usage}),
        ("graph-ingest", "audit", "AuditEvent", {**env, "actor": "graph-ingest", "action": "ingested",
                                                 "subject": rid, "reason": "learned",
                                                 "details": {"event_id": uuid.uuid4().hex, "triples": 2}}),
    ]


async def publish(env: dict[str, str], keys: Any, tenant: str, requests: int, rate: float) -> None:
    """`requests` requests' messages at `rate` requests a second, each by its sender (its own producer key)."""
    from moe_core.contracts import headers
    from moe_core.runtime.bus import Bus
    from moe_core.runtime.settings import FleetSettings
    from moe_core.stage.producers import key_file

    buses = {name: Bus(FleetSettings(kafka_bootstrap=env["MOE_KAFKA_BOOTSTRAP"], service_name=name,
                                     topic_namespace=env["MOE_TOPIC_NAMESPACE"],
                                     producer_signing_key=str(key_file(keys, name)))) for name in SENDERS}
    for bus in buses.values():
        await bus.broker.start()
    try:
        start = time.monotonic()
        for n in range(requests):
            rid = f"soak-{uuid.uuid4().hex[:12]}"
            sends = []
            for sender, topic_attr, kind, payload in request_messages(rid, tenant):
                bus = buses[sender]
                topic, key, value = getattr(bus.topics, topic_attr), rid.encode(), json.dumps(payload).encode()
                marks = {headers.RESPONSE_ID: rid, headers.MESSAGE_TYPE: kind, headers.SCHEMA_VERSION: "1",
                         headers.PRODUCER: sender}
                sends.append(bus.send_record(topic, key, value, bus.signed(topic, key, value, marks)))
            await asyncio.gather(*sends)
            await asyncio.sleep(max(0.0, start + (n + 1) / rate - time.monotonic()))
    finally:
        for bus in buses.values():
            await bus.close()


async def entries(dsn: str, schema: str, tenant: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(f'SELECT coalesce(max(seq), 0) FROM "{schema}".audit_log WHERE tenant_id=$1',
                                       tenant))
    finally:
        await conn.close()


async def checkpointed(dsn: str, schema: str, tenant: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(f'SELECT coalesce(max(size), 0) FROM "{schema}".audit_checkpoints WHERE '
                                       "tenant_id=$1", tenant))
    finally:
        await conn.close()


async def sample(pid: int, dsn: str, schema: str, tenant: str, every_s: float, done: asyncio.Event,
                 out: list[tuple[float, int, float, float]]) -> None:
    start = time.monotonic()
    while True:
        n, signed = await entries(dsn, schema, tenant), await checkpointed(dsn, schema, tenant)
        rss, anon = rss_mb({"l": pid})["l"], rss_mb({"l": pid}, "RssAnon")["l"]
        out.append((time.monotonic() - start, n, rss, anon))
        print(f"{out[-1][0]:7.0f} s {n:9d} entries ({signed:9d} checkpointed)  rss {rss:7.1f} MB  anon {anon:7.1f} MB",
              flush=True)
        if done.is_set():
            return
        await asyncio.sleep(every_s)


def slope_per_10k(points: list[tuple[float, int, float, float]]) -> tuple[float, float]:
    """Least-squares slope of (RSS, RssAnon) against entries over the second half, MB per 10,000 entries."""
    half = points[len(points) // 2:]
    xs = [p[1] for p in half]
    mx = sum(xs) / len(xs)
    var = sum((x - mx) ** 2 for x in xs) or 1.0
    return tuple(sum((x - mx) * (p[i] - sum(q[i] for q in half) / len(half)) for x, p in zip(xs, half, strict=True))
                 / var * 10_000 for i in (2, 3))  # type: ignore[return-value]


async def drive(args: argparse.Namespace, env: dict[str, str], fleet: Fleet, dsn: str) -> None:
    tenant = f"tenant-{env['MOE_TOPIC_NAMESPACE']}"
    pid = fleet["codex-lineage"].proc.pid  # type: ignore[union-attr]
    done, points = asyncio.Event(), []  # type: ignore[var-annotated]
    sampler = asyncio.create_task(sample(pid, dsn, env["MOE_AUDIT_SCHEMA"], tenant, args.sample_s, done, points))
    await publish(env, fleet.producer_keys, tenant, args.requests, args.rate)
    target = args.requests * 18  # ~18 entries a request (6 records, 12 lineage events): until it caught up
    end = time.monotonic() + 300
    while await entries(dsn, env["MOE_AUDIT_SCHEMA"], tenant) < target * 0.98 and time.monotonic() < end:
        await asyncio.sleep(2)
    await asyncio.sleep(args.sample_s)
    done.set()
    await sampler
    rss, anon = slope_per_10k(points)
    first, last = points[0], points[-1]
    print(f"RESULT entries {last[1]}  rss {first[2]:.1f} -> {last[2]:.1f} MB ({last[2] - first[2]:+.1f})  anon "
          f"{first[3]:.1f} -> {last[3]:.1f} MB ({last[3] - first[3]:+.1f})  2nd-half slope per 10k entries: rss "
          f"{rss:+.2f} MB, anon {anon:+.2f} MB")


def witnessed(stack: ExitStack, env: dict[str, str], tenant: str) -> dict[str, str]:
    """A witness of the run's own, the tenant's log (codex-lineage's key, the default log name) provisioned in it:
    codex-lineage's settings for it."""
    from moe_core.audit.checkpoints import Anchoring
    from moe_core.audit.signer import Signer
    from tests.support.witness import running_witness

    witness = stack.enter_context(running_witness())
    anchoring = Anchoring(Signer.from_file(env["MOE_AUDIT_SIGNING_KEY"]), None)
    witness.provision(anchoring.note_key.vkey, anchoring.origin(tenant))
    return {"MOE_AUDIT_WITNESS_URL": witness.url, "MOE_AUDIT_WITNESS_KEY": str(witness.vkey_file)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--rate", type=float, default=12.0, help="requests a second")
    parser.add_argument("--sample-s", type=float, default=15.0)
    parser.add_argument("--env", action="append", default=[], help="K=V for codex-lineage")
    parser.add_argument("--witness", action="store_true", help="checkpoints cosigned by a witness of the run's own")
    args = parser.parse_args()
    eps = connect(["kafka", "postgres"])
    namespace = new_namespace("memsoak")
    with record_env(eps, namespace) as audit, ExitStack() as stack:
        env = {"MOE_TOPIC_NAMESPACE": namespace, "MOE_KAFKA_BOOTSTRAP": eps["kafka"], "MOE_REDIS_URL": eps["redis"],
               "MOE_POSTGRES_DSN": eps["postgres"], **kafka_admin_env(), **audit,
               **dict(kv.split("=", 1) for kv in args.env)}
        if args.witness:
            env.update(witnessed(stack, env, f"tenant-{namespace}"))
        fleet = Fleet(env, gateway_workers=1, extra=("codex-lineage",))
        for name in list(fleet.services):
            if name != "codex-lineage":
                del fleet.services[name]
        try:
            with fleet:
                asyncio.run(drive(args, env, fleet, eps["postgres-audit-migrator"]))
                print(f"codex-lineage's log: {fleet['codex-lineage'].log}")
        finally:
            asyncio.run(_delete_topics(eps["kafka"], namespace))


if __name__ == "__main__":
    main()
