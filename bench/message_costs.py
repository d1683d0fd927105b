"""What the stage runtime costs per message, in CPU seconds, with no store and no model (issue 29 item 3):

  python -m bench.message_costs [N] [--profile]

A stage declared like the fleet's (moe_core.stage.spec: router, decoder, StageMiddleware, run scope) runs in this
process on the broker the services use (moe_core.runtime.bus.make_broker: the run clock and the tracing middleware,
moe_core.runtime.observability.kafka_tracing; FastStream's access logger), driven by FastStream's in-memory
TestKafkaBroker so that neither Kafka nor the network is measured: only the runtime's own work. Each of N rounds
publishes an ExpertTask through the Bus (stamping, encoding, the producer span, the one published-message
increment), the stage consumes it (decoding, consumer span, the one `moe_stage_seconds` observation, the
handler's run scope) and publishes a TaskResult of about the size of a real one, which a
second subscriber consumes. Printed: CPU microseconds per hop (one publish + one consumption), the lowest and
the median of 5 runs; with --profile one run's cProfile breakdown by where the time goes (tracing, metrics,
logging, pydantic, run versions, the FastStream machinery; cProfile attributes time inside coroutines
unreliably: take it as a pointer, and measure a change by switching the part off).

For a before/after, run it with an older tree first on PYTHONPATH (as bench.cache_costs):
`git archive <rev> libs | tar -x -C /tmp/before` and `PYTHONPATH=.:/tmp/before/libs python -m bench.message_costs`.
The environment's MOE_* settings apply (e.g. MOE_TRACE_SAMPLE_RATIO=1 for every span recorded).
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import pstats
import sys
import time
from typing import Any

WARMUP = 200
REPEATS = 5
CATEGORIES = (  # first match wins, by file path of the frame
    ("tracing (opentelemetry)", ("opentelemetry",)),
    ("metrics (prometheus_client)", ("prometheus_client",)),
    ("logging", ("/logging/", "faststream/_internal/logger", "middlewares/logging")),
    ("pydantic (validation, dumps, copies)", ("pydantic",)),
    ("run versions, replay, run clock", ("run_versions", "inference/replay", "run_clock")),
    ("moe_core runtime (bus, stage consumer)", ("moe_core/",)),
    ("faststream + fast_depends", ("faststream", "fast_depends")),
    ("asyncio", ("asyncio",)),
)


def _category(filename: str) -> str:
    for name, parts in CATEGORIES:
        if any(p in filename for p in parts):
            return name
    return "other"


async def run(n: int, profile: bool) -> dict[str, Any]:
    from faststream.kafka import TestKafkaBroker

    from moe_core.contracts import ExpertTask, TaskResult, deadline_in
    from moe_core.runtime.bus import Bus
    from moe_core.runtime.settings import FleetSettings
    from moe_core.stage.consumer import stage_router
    from moe_core.stage.spec import Consumes, Stage

    class Echo:
        def __init__(self, bus: Bus) -> None:
            self.bus = bus

        async def handle(self, task: ExpertTask) -> None:
            await self.bus.publish(TaskResult(**task.child_fields(), task_id=task.task_id, category=task.category,
                                              content="An answer of a typical length. " * 20),
                                   self.bus.topics.results)

    settings = FleetSettings(service_name="bench-echo", topic_namespace="benchmsg")
    bus = Bus(settings)
    stage = Stage(name="bench-echo", settings=FleetSettings, build=lambda res: None, summary="echo",
                  consumes=(Consumes("tasks_expert", ExpertTask, "handle"),), publishes=("results",), needs=())
    echo = Echo(bus)
    router, _ = stage_router(stage, settings, bus, {"handle": echo.handle})
    bus.broker.include_router(router)
    seen = [0]

    @bus.broker.subscriber(bus.topics.results)
    async def sink(message: Any) -> None:
        seen[0] += 1

    def task(i: int) -> ExpertTask:
        return ExpertTask(response_id=f"bench-{i}", tenant_id="t", deadline_at=deadline_in(60), task_id="t1",
                          category="general", instruction="Answer briefly.",
                          question="What does the runtime cost per message? " * 4)

    async with TestKafkaBroker(bus.broker):
        for i in range(WARMUP):
            await bus.publish(task(i), bus.topics.tasks_expert)
        profiler = cProfile.Profile() if profile else None
        started = time.process_time()
        if profiler is not None:
            profiler.enable()
        for i in range(n):
            await bus.publish(task(i), bus.topics.tasks_expert)
        if profiler is not None:
            profiler.disable()
        cpu = time.process_time() - started
    assert seen[0] == WARMUP + n, seen
    hops = 2 * n  # the task and the result: one publish and one consumption each
    out: dict[str, Any] = {"rounds": n, "hops": hops, "cpu_us_per_hop": round(1e6 * cpu / hops, 1)}
    if profiler is not None:
        out["breakdown"] = _breakdown(profiler, hops)
    return out


def _breakdown(profiler: cProfile.Profile, hops: int) -> list[tuple[str, float, float]]:
    """Own time (tottime) by category: (category, µs per hop, share %). Profiling slows everything alike."""
    stats = pstats.Stats(profiler, stream=io.StringIO())
    own: dict[str, float] = {}
    for (filename, _, _), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        key = _category(filename)
        own[key] = own.get(key, 0.0) + tottime
    total = sum(own.values()) or 1.0
    return sorted(((k, round(1e6 * v / hops, 1), round(100 * v / total, 1)) for k, v in own.items()),
                  key=lambda row: -row[1])


def main(argv: list[str]) -> None:
    n = next((int(a) for a in argv if a.isdigit()), 2000)
    if "--profile" not in argv:  # REPEATS runs; the lowest is the least disturbed by other users of the machine
        runs = sorted(asyncio.run(run(n, False))["cpu_us_per_hop"] for _ in range(REPEATS))
        print(f"{n} rounds, {2 * n} hops, {REPEATS} runs: {runs[0]} µs of CPU per hop (lowest), "
              f"{runs[REPEATS // 2]} (median)")
        return
    result = asyncio.run(run(n, True))
    print(f"{result['rounds']} rounds, {result['hops']} hops: {result['cpu_us_per_hop']} µs of CPU per hop "
          "(under cProfile)")
    for name, us, share in result.get("breakdown", []):
        print(f"  {name:40s} {us:8.1f} µs/hop  {share:5.1f} %")


if __name__ == "__main__":
    main(sys.argv[1:])
