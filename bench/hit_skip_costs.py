"""The planner's CPU per cache hit's Answer on its `answers` subscription (issue 52), skipped unparsed or handled:

    .venv/bin/python -m bench.hit_skip_costs [--hits 1500] [--rate 150] [--rounds 2]

The planner app in this process (tests.infra.planner.harness: the real Kafka, Redis, Chroma and OPA in a fresh
namespace), started once per window, alternately with its `answers` subscription read three ways: `parse` (session 47's
declaration: every Answer decoded, validated and handed to on_answer, which finds cacheable() false), `skip` (a hit's
Answer acknowledged unparsed, Consumes.skip_marked) and `linger` (skipped too, and read by a lingering consumer of
its own, Consumes.linger: the declaration since session 48). A child process publishes
HITS cache hits' Answers through a Bus, as the gateway publishes an exact repeat's (the same stamps and headers), at
RATE a second: one at a time, as hits at concurrency 1 come. Counted: this process's CPU (utime + stime, every
thread) from the child's start until the planner has taken every hit (`moe_stage_seconds` counts them), less the
planner's idle CPU over the same time (measured for 10 s before; its polls and heartbeats), per hit."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import importlib
import os
import pstats
import statistics
import sys
import time
from typing import Any

IDLE_S = 10.0
PROFILE = 0  # --profile N: the window's cProfile (CPU clock), its top N functions by own time
PRODUCER = """
import asyncio, sys, time
from moe_core.contracts import Answer, ModelUse, Source, deadline_in
from moe_core.runtime.bus import Bus
from moe_core.runtime.settings import FleetSettings

async def main(namespace, bootstrap, hits, rate):
    bus = Bus(FleetSettings(service_name="gateway", topic_namespace=namespace, kafka_bootstrap=bootstrap))
    content = ("PostgreSQL listens on TCP port 5432 by default; on Debian 12 the packaged cluster 15/main uses it "
               "unless another cluster already holds it (see port in postgresql.conf and pg_lsclusters). ") * 2
    try:
        start = time.perf_counter()
        for i in range(hits):
            hit = Answer(response_id=f"hit-{i:06d}-{namespace}", tenant_id="tenant-bench", deadline_at=deadline_in(60),
                         mode="moe-orchestrator", content=content, cache_hit=True, cache_key=f"k{i:040d}",
                         question="Which port does PostgreSQL listen on by default in Debian 12?",
                         sources=[Source(kind="cache", ref=f"k{i:040d}", title="Which port does PostgreSQL listen on")],
                         models_used=[ModelUse(model="expert-a", category="technical_support")],
                         experts_used=["technical_support"])
            await bus.publish(hit, bus.topics.answers)
            await asyncio.sleep(max(0.0, start + (i + 1) / rate - time.perf_counter()))
    finally:
        await bus.close()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
"""


def cpu_s() -> float:
    fields = open("/proc/self/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def taken(service: str, topic: str) -> float:
    """The answers the planner's subscription took (handled or skipped: moe_stage_seconds' count), read from the
    histogram's own buckets: the registry's get_sample_value collects every metric, ~6 ms of this process's CPU a
    call, which polled ten times a second was most of what a window counted."""
    from moe_core.runtime.observability.metrics import STAGE_SECONDS

    return sum(bucket.get() for outcome in ("ok", "skipped") for bucket in STAGE_SECONDS.labels(service, topic,
                                                                                                outcome)._buckets)


async def window(mode: str, hits: int, rate: float) -> tuple[float, float]:
    """One planner, one window of hits: (net CPU ms per hit, idle CPU ms per second)."""
    planner_app: Any = importlib.import_module("planner.app")
    harness = importlib.import_module("tests.infra.planner.harness")
    declared = planner_app.STAGE
    marks = declared_marks(declared)
    variants: dict[str, dict[str, Any]] = {"parse": {"skip_marked": (), "linger": False},
                                           "skip": {"skip_marked": marks, "linger": False},
                                           "linger": {"skip_marked": marks, "linger": True}}
    changes = variants[mode]
    if changes:  # the answers' subscription as the mode has it, whatever the declaration says
        planner_app.STAGE = dataclasses.replace(declared, consumes=tuple(
            dataclasses.replace(c, **changes) if c.topic == "answers" else c for c in declared.consumes))
    try:
        async with harness.running_planner("{}") as h:
            await asyncio.sleep(3)  # the start's own work settled
            idle_from, idle_at = cpu_s(), time.perf_counter()
            await asyncio.sleep(IDLE_S)
            idle = (cpu_s() - idle_from) / (time.perf_counter() - idle_at)
            service, topic = h.settings.service_name, h.topics.answers
            before = taken(service, topic)
            profiler = cProfile.Profile(time.process_time) if PROFILE else None
            if profiler is not None:
                profiler.enable()
            cpu0, t0 = cpu_s(), time.perf_counter()
            child = await asyncio.create_subprocess_exec(sys.executable, "-c", PRODUCER, h.settings.topic_namespace,
                                                         h.kafka, str(hits), str(rate))
            try:
                while taken(service, topic) - before < hits:
                    if child.returncode not in (None, 0):
                        raise RuntimeError(f"the producer failed: {child.returncode}")
                    await asyncio.sleep(0.25)
            finally:
                await child.wait()
            gross, elapsed = cpu_s() - cpu0, time.perf_counter() - t0
            if profiler is not None:
                profiler.disable()
                print(f"--- {mode}: the window's top functions by own CPU time")
                pstats.Stats(profiler).sort_stats("tottime").print_stats(PROFILE)
            return (gross - idle * elapsed) * 1000 / hits, idle * 1000
    finally:
        planner_app.STAGE = declared


def declared_marks(stage: Any) -> tuple[str, ...]:
    from moe_core.contracts.headers import CACHE_HIT

    return next((c.skip_marked for c in stage.consumes if c.topic == "answers"), ()) or (CACHE_HIT,)


async def main(hits: int, rate: float, rounds: int, modes: list[str]) -> None:
    results: dict[str, list[float]] = {mode: [] for mode in modes}
    for r in range(rounds):
        for mode in (modes if r % 2 == 0 else modes[::-1]):
            per_hit, idle = await window(mode, hits, rate)
            results[mode].append(per_hit)
            print(f"round {r + 1} {mode}: {per_hit:.3f} ms of CPU per hit (idle {idle:.1f} ms/s, "
                  f"load {os.getloadavg()[0]:.2f})", flush=True)
    for mode, values in results.items():
        print(f"{mode}: median {statistics.median(values):.3f} ms per hit over {len(values)} windows "
              f"({', '.join(f'{v:.3f}' for v in values)})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hits", type=int, default=1500)
    parser.add_argument("--rate", type=float, default=150.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--modes", default="parse,skip,linger", help="of parse, skip, linger (the docstring)")
    parser.add_argument("--profile", type=int, default=0, help="print each window's cProfile, its top N functions")
    args = parser.parse_args()
    PROFILE = args.profile
    asyncio.run(main(args.hits, args.rate, args.rounds, args.modes.split(",")))
