"""One variant of bench.runtime_costs in a process of its own: `python -m bench.runtime_stage VARIANT N NAMESPACE
[--profile]` (Kafka's address and credentials in MOE_KAFKA_*; with --profile, MOE_BENCH_PSTATS=FILE also writes the raw
cProfile stats, for pstats' callers and callees). Prints one JSON line: the CPU of this process per
message over N round trips after bench.runtime_costs.WARMUP unmeasured ones."""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import io
import json
import os
import pstats
import sys
import time
from typing import Any

from bench.runtime_costs import WARMUP

ENV = {"in-flight-1": {"MOE_CONSUMER_IN_FLIGHT": "1", "MOE_CONSUMER_WORKERS": "1"},
       "commit-each": {"MOE_KAFKA_COMMIT_INTERVAL_MS": "0"},
       "librdkafka-consumer": {"MOE_KAFKA_CONSUMER": "librdkafka"},
       "aiokafka-consumer": {"MOE_KAFKA_CONSUMER": "aiokafka"}}


class _Null:
    """A metric that records nothing."""

    def labels(self, *args: Any) -> _Null:
        return self

    def inc(self, *args: Any) -> None:
        return None

    def observe(self, *args: Any) -> None:
        return None


def patch(variant: str) -> None:
    """Switch one part of the runtime off in this process (before the broker is built)."""
    os.environ.update(ENV.get(variant, {}))
    from moe_core.runtime import bus, run_clock
    from moe_core.stage import consumer

    if variant == "no-tracing":
        make, tracing = bus.KafkaBroker, object()
        bus.kafka_tracing = lambda provider: tracing  # type: ignore[assignment,return-value]

        def without(*args: Any, middlewares: tuple[Any, ...] = (), **kwargs: Any) -> Any:
            return make(*args, middlewares=tuple(m for m in middlewares if m is not tracing), **kwargs)

        bus.KafkaBroker = without  # type: ignore[assignment,misc]
    elif variant == "no-ledger":
        run_clock.metered = lambda coro, ledger: coro
    elif variant == "no-metrics":
        bus.MESSAGES_PUBLISHED = consumer.STAGE_SECONDS = _Null()  # type: ignore[assignment]
    elif variant == "no-log-context":
        consumer.bind_response_id = lambda rid: contextlib.nullcontext()  # type: ignore[assignment,return-value]
    elif variant == "faststream-handling":
        consumer.direct_handling = lambda *args: None
    elif variant == "no-stamps":
        bus.Bus.publish = lambda self, message, topic: self._send(message, topic)  # type: ignore[method-assign]


class Window:
    """process_time over the messages after the warm-up; set when the last one was handled."""

    def __init__(self, n: int, profiler: cProfile.Profile | None) -> None:
        self.n, self.seen, self.profiler = n, 0, profiler
        self.cpu = self.wall = 0.0
        self.done = asyncio.Event()

    def handled(self) -> None:
        self.seen += 1
        if self.seen == WARMUP:
            self.cpu, self.wall = time.process_time(), time.perf_counter()
            if self.profiler is not None:
                self.profiler.enable()
        elif self.seen == WARMUP + self.n:
            self.cpu, self.wall = time.process_time() - self.cpu, time.perf_counter() - self.wall
            if self.profiler is not None:
                self.profiler.disable()
            self.done.set()


async def fleet_stage(window: Window) -> tuple[Any, Any]:
    """The echo stage on the services' runtime: started; (stop, bus)."""
    from moe_core.contracts import ExpertTask, TaskResult
    from moe_core.runtime.bus import Bus
    from moe_core.runtime.observability import configure_logging
    from moe_core.runtime.settings import FleetSettings
    from moe_core.stage.consumer import stage_router
    from moe_core.stage.spec import Consumes, Stage

    settings = FleetSettings(service_name="bench-echo")
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    bus = Bus(settings)
    content = "An answer of a typical length, as an expert writes it. " * 20

    async def handle(task: ExpertTask) -> None:
        await bus.publish(TaskResult(**task.child_fields(), task_id=task.task_id, category=task.category,
                                     content=content), bus.topics.results)
        window.handled()

    stage = Stage(name="bench-echo", settings=FleetSettings, build=lambda res: None, summary="echo",
                  consumes=(Consumes("tasks_expert", ExpertTask, "handle", per_task=True),), publishes=("results",),
                  needs=())
    router, _ = stage_router(stage, settings, bus, {"handle": handle})
    bus.broker.include_router(router)
    await bus.broker.start()
    return bus.broker.stop, bus


async def bare_stage(window: Window) -> tuple[Any, Any]:
    """The floor: an aiokafka consumer and producer, json in and out."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from moe_core.contracts import Topics
    from moe_core.runtime.kafka_clients import client_kwargs

    topics = Topics.for_namespace(os.environ["MOE_TOPIC_NAMESPACE"])
    consumer = AIOKafkaConsumer(topics.tasks_expert, **client_kwargs(), group_id=f"bench-bare.{topics.results}",
                                auto_offset_reset="earliest", fetch_max_wait_ms=500)
    producer = AIOKafkaProducer(**client_kwargs(), acks="all", enable_idempotence=True, linger_ms=0)
    await consumer.start()
    await producer.start()
    content = "An answer of a typical length, as an expert writes it. " * 20

    async def loop() -> None:
        async for record in consumer:
            task = json.loads(record.value)
            result = {**{k: task[k] for k in ("response_id", "tenant_id", "deadline_at", "task_id", "category")},
                      "content": content}
            await producer.send_and_wait(topics.results, json.dumps(result).encode(), key=record.key,
                                         headers=list(record.headers))
            window.handled()

    running = asyncio.create_task(loop())

    async def stop() -> None:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await consumer.stop()
        await producer.stop()

    return stop, None


async def run(variant: str, n: int, namespace: str, profile: bool) -> dict[str, Any]:
    from moe_core.contracts import Topics
    from moe_core.runtime.bus import ensure_topics

    topics = Topics.for_namespace(namespace)
    bootstrap = os.environ["MOE_KAFKA_BOOTSTRAP"]
    await ensure_topics(bootstrap, [topics.tasks_expert, topics.results], 1)
    if variant != "bare":
        patch(variant)
    window = Window(n, cProfile.Profile(time.process_time) if profile else None)
    stop, _ = await (bare_stage(window) if variant == "bare" else fleet_stage(window))
    driver = await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.runtime_driver", namespace,
                                                  str(WARMUP + n))
    try:
        await asyncio.wait_for(window.done.wait(), 240)
    finally:
        await driver.wait()
        await stop()
        await _delete(bootstrap, [topics.tasks_expert, topics.results])
    if window.profiler is not None:
        text = io.StringIO()
        stats = pstats.Stats(window.profiler, stream=text)
        if os.environ.get("MOE_BENCH_PSTATS"):  # the raw profile, for pstats' callers and callees
            stats.dump_stats(os.environ["MOE_BENCH_PSTATS"])
        stats.sort_stats("tottime").print_stats(40)
        print(text.getvalue(), file=sys.stderr)
        for name, share in layers(stats):
            print(f"  {name:36s} {share:5.1f} % of the process's CPU (own time under cProfile)", file=sys.stderr)
    return {"variant": variant, "messages": n, "cpu_us_per_message": round(1e6 * window.cpu / n, 1),
            "wall_us_per_message": round(1e6 * window.wall / n, 1)}


LAYERS = (("aiokafka (client, protocol)", ("aiokafka",)), ("faststream + fast_depends", ("faststream", "fast_depends")),
          ("opentelemetry", ("opentelemetry",)), ("prometheus_client", ("prometheus_client",)),
          ("pydantic", ("pydantic",)), ("moe_core runtime", ("moe_core/",)), ("bench (handler, window)", ("bench/",)),
          ("asyncio, selectors, sockets", ("asyncio", "selectors", "socket", "<built-in method select", "{method")))


def layers(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Own time (tottime) by layer, by the file of each function: its share of the profiled CPU."""
    own: dict[str, float] = {}
    for (filename, _, func), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = filename + func
        name = next((n for n, parts in LAYERS if any(p in where for p in parts)), "other")
        own[name] = own.get(name, 0.0) + tottime
    total = sum(own.values()) or 1.0
    return sorted(((k, 100 * v / total) for k, v in own.items()), key=lambda kv: -kv[1])


async def _delete(bootstrap: str, names: list[str]) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    from moe_core.runtime.kafka_clients import client_kwargs

    admin = AIOKafkaAdminClient(**client_kwargs(bootstrap=bootstrap), client_id="moe-admin")
    await admin.start()
    try:
        await admin.delete_topics(names)
    finally:
        await admin.close()


if __name__ == "__main__":
    result = asyncio.run(run(sys.argv[1], int(sys.argv[2]), sys.argv[3], "--profile" in sys.argv))
    print(json.dumps(result))
