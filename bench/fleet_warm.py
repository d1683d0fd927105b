"""The whole fleet warmed before the bench measures idle and the cells, in each profile (with and without the record
and learning): batches of the cells' own paths (full, trivial, cache) until every stage has run and the JVMs' CPU
per request has settled.

Kafka and Neo4j run on the JVM, whose JIT compiles their hot code only after many requests: measured on
27 November, whichever bench run came first after the infrastructure started paid Kafka 61.6 / 113.8 ms and Neo4j
60.4 / 88.1 ms of CPU per full request at concurrency 1, the second run 19.9 / 24.9 and 34.9 / 57.0. A fleet in
production has long passed that point, so the bench measures after it.

One batch is `requests` requests of every path at `concurrency`, then the work behind them (the record, usage,
the cache's write-behind, learning: bench.settle); its figure is Kafka's and Neo4j's CPU over that window per
request (gross: their idle use is measured only after the warm-up). The warm-up stops when

- every stage has run (`missing` is empty): every running service that consumes a topic the batches published
  handled a message of it, codex-lineage recorded and made a checkpoint (its interval: 60 s by default), and
  learning (graph-ingest, gap-healer) queried Neo4j, gap-healer wrote to it; and
- the CPU settled (`settled`): the last WINDOW batches' figures lie within TOLERANCE of their mean (or FLOOR_MS),

or after `max_batches` (then `cap_hit` says so and the cells are measured anyway). Its requests never count in a
cell; its figures are kept in the results (`fleet_warm`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

import moe_core.stage.registry as stage_registry
from bench import loadgen, stages
from bench.loadgen import Target
from moe_core.contracts import Topics
from moe_core.stage.spec import EVERY_TOPIC

log = logging.getLogger("bench")
JVMS = ("kafka", "neo4j")
WINDOW = 3  # batches compared
TOLERANCE = 0.2  # their spread, as a share of their mean ...
FLOOR_MS = 1.0  # ... or this many ms per request, whichever is larger (a few ms move by more than 20 % in noise)
CPU = Callable[[], dict[str, float]]
Metrics = Callable[[], Awaitable[stages.Snapshot]]
Settle = Callable[[], Awaitable[float]]


def settled(per_request: list[float], window: int = WINDOW, tolerance: float = TOLERANCE,
            floor_ms: float = FLOOR_MS) -> bool:
    """True when the last `window` figures (CPU ms per request, one per batch) lie within `tolerance` of their
    mean (or within `floor_ms`, when that is larger): the JIT warm-up no longer shows from batch to batch."""
    if window < 2 or len(per_request) < window:
        return False
    last = per_request[-window:]
    mean = sum(last) / window
    return max(last) - min(last) <= max(tolerance * mean, floor_ms)


@dataclass(frozen=True)
class Consumer:
    service: str
    topic: str  # short, as bench.stages names it (tasks.expert)


def consumers(services: list[str]) -> list[Consumer]:
    """The topics each running service handles, from its declaration (every subscription but the record's of
    every topic and the conditional ones, which may not be made at all)."""
    topics, out = Topics.for_namespace("ns"), []
    for name in services:
        declaration = stage_registry.service(name).declaration()
        for consumes in getattr(declaration, "consumes", ()) if declaration else ():
            if consumes.topic != EVERY_TOPIC and consumes.when is None:
                out.append(Consumer(name, ".".join(getattr(topics, consumes.topic).split(".")[1:-1])))
    return out


def missing(done: stages.Snapshot, services: list[str]) -> list[str]:
    """What has not run yet in the warm-up, given the summed counters of its batches (`done`, bench.stages)."""
    published = {key[1] for rows in done.values() for key, (_, n) in rows.items()
                 if key[0] == "moe_messages_published" and n > 0}
    handled = {(s, key[1]) for s, rows in done.items() for key, (_, n) in rows.items()
               if key[0] == "moe_stage_seconds" and n > 0}
    out = [f"{c.service} handling {c.topic}" for c in consumers(services)
           if c.topic in published and (c.service, c.topic) not in handled]

    def count(service: str, metric: str, label: str | None = None) -> float:
        return sum(n for key, (_, n) in done.get(service, {}).items()
                   if key[0] == metric and (label is None or key[1] == label))

    if "codex-lineage" in services:
        if not count("codex-lineage", "moe_lineage_records"):
            out.append("codex-lineage recording")
        if not count("codex-lineage", "moe_audit_checkpoints"):
            out.append("codex-lineage checkpointing")
    if "graph-ingest" in services and not count("graph-ingest", "moe_store_seconds", "neo4j"):
        out.append("graph-ingest querying Neo4j")
    if "gap-healer" in services and not count("gap-healer", "moe_store_ops", "neo4j:write"):
        out.append("gap-healer writing to Neo4j")
    return out


def add(total: stages.Snapshot, after: stages.Snapshot, before: stages.Snapshot) -> None:
    """total += after - before, per service and counter."""
    for service, rows in after.items():
        prev, into = before.get(service, {}), total.setdefault(service, {})
        for key, (s, n) in rows.items():
            old = prev.get(key, [0.0, 0.0])
            row = into.setdefault(key, [0.0, 0.0])
            row[0] += s - old[0]
            row[1] += n - old[1]


async def batch(http: aiohttp.ClientSession, targets: list[Target], requests: int, concurrency: int,
                cpu: CPU, settle: Settle | None) -> dict[str, Any]:
    """`requests` requests of every target at `concurrency`, then the work behind them; its JVMs' CPU."""
    before, started = cpu(), time.perf_counter()
    errors = 0
    for target in targets:
        cell = await loadgen.run_cell(http, target, concurrency=concurrency, stream=False, run=0,
                                      max_requests=requests, max_seconds=float("inf"))
        errors += sum(1 for r in cell.records if r.error)
    if settle is not None:
        await settle()
    after, seconds = cpu(), time.perf_counter() - started
    sent = requests * len(targets)
    jvm = {name: round((after.get(name, 0.0) - before.get(name, 0.0)) * 1000 / sent, 2) for name in JVMS}
    return {"requests": sent, "errors": errors, "seconds": round(seconds, 2), "cpu_ms_per_request": jvm,
            "jvm_ms_per_request": round(sum(jvm.values()), 2)}


@dataclass
class Plan:
    max_batches: int
    requests: int  # per path and batch
    concurrency: int


async def warm(http: aiohttp.ClientSession, targets: list[Target], plan: Plan, services: list[str], cpu: CPU,
               metrics: Metrics | None, settle: Settle | None) -> dict[str, Any]:
    """Batches until every stage has run and the JVMs' CPU per request settled, or `plan.max_batches`."""
    started, batches, done = time.monotonic(), list[dict[str, Any]](), stages.Snapshot()
    left: list[str] = []
    calm = False
    while len(batches) < plan.max_batches:
        before = await metrics() if metrics else {}
        batches.append(await batch(http, targets, plan.requests, plan.concurrency, cpu, settle))
        if metrics:
            add(done, await metrics(), before)
        left = missing(done, services) if metrics else []
        calm = settled([b["jvm_ms_per_request"] for b in batches])
        log.info("fleet warm-up batch %d: %d requests, Kafka+Neo4j %.1f ms CPU per request%s%s", len(batches),
                 batches[-1]["requests"], batches[-1]["jvm_ms_per_request"], ", settled" if calm else "",
                 f"; not run yet: {', '.join(left)}" if left else "")
        if calm and not left:
            break
    cap_hit = not (calm and not left)
    if cap_hit and plan.max_batches:
        log.warning("fleet warm-up: cap of %d batches hit (settled: %s; not run: %s)", plan.max_batches, calm,
                    ", ".join(left) or "-")
    return {"paths": [t.name for t in targets], "requests_per_path": plan.requests, "concurrency": plan.concurrency,
            "max_batches": plan.max_batches, "criterion": {"window": WINDOW, "tolerance": TOLERANCE,
                                                           "floor_ms": FLOOR_MS},
            "batches": batches, "settled": calm, "missing": left, "cap_hit": cap_hit,
            "seconds": round(time.monotonic() - started, 1)}

