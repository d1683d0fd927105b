"""Where the planner's CPU per request goes beyond its embedding (issue 52): the planner app on the real Kafka, Redis,
Chroma and OPA (`make up`'s), N requests one at a time as the fleet sends them: the request (a new question each
time, trivial or, with --full, one the planner model plans), then the merger's answer; the cache entry it yields is
indexed, and written into Chroma in the background, as in the fleet (the run waits for the last). cProfile (CPU clock)
over that stretch, attributed per handler (cumulative) and per library (own time by source file, ours by file). The
test's producer and reader run in the same process (aiokafka's share includes theirs: the reader fetches every
10 ms and reads metadata every second, so on a loaded machine, where a request takes a second or more of wall time,
much of it is the reader's; the figure net of idle takes the idle rate of both away). Not a test:
`.venv/bin/python -m tests.infra.planner.planner_profile 100 [--full] [--top 40] [--dump FILE]` inside the test
namespace."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from moe_core.contracts import Answer, ChatMessage, ChatRequest, Topics, deadline_in
from moe_core.runtime.observability.metrics import STAGE_SECONDS
from tests.infra.planner.harness import running_planner
from tests.support.topic_reader import TopicReader

PLAN = json.dumps({"tasks": [{"category": "general", "instruction": "answer"},
                             {"category": "technical_support", "instruction": "check"}]})
ANSWER = ("Leonardo da Vinci painted the Mona Lisa between about 1503 and 1519; it hangs in the Louvre in Paris, "
          "behind glass, and is one of the most visited paintings in the world.")
SUBJECTS = ["painted", "wrote", "discovered", "founded", "invented", "composed", "built", "named"]
HANDLERS = ("handle", "on_answer", "on_cache_entry")
LIBRARIES = ("aiokafka", "kafka", "pydantic", "pydantic_core", "httpx", "httpcore", "redis", "chromadb", "faststream",
             "prometheus_client", "opentelemetry", "fastembed", "onnxruntime", "tokenizers", "numpy", "orjson",
             "anyio", "starlette", "structlog", "asyncio", "json", "logging", "ssl", "selectors", "socket", "re",
             "uuid", "hashlib", "copy", "dataclasses", "enum", "typing", "contextlib", "functools", "tests",
             "planner", "moe_core")


def question(i: int, full: bool) -> str:
    tag = uuid.uuid4().hex[:6]
    if full:
        return f"Compare Wi-Fi 6 and Wi-Fi 7 for an office of {i} people on floor {tag}, with trade-offs"
    return f"Who {SUBJECTS[i % len(SUBJECTS)]} the thing number {i} of {tag}?"


def library(filename: str) -> str:
    """The package a source file belongs to (site-packages' top level, the stdlib module, or ours)."""
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins"
    parts = Path(filename).parts
    for marker in ("site-packages", "planner", "moe_core", "tests"):
        if marker in parts:
            at = parts.index(marker)
            if marker == "site-packages":
                return parts[at + 1].removesuffix(".py") if at + 1 < len(parts) else "?"
            return "/".join(parts[at:])  # ours: by file
    if "python3.11" in parts:
        at = parts.index("python3.11")
        return parts[at + 1].removesuffix(".py") if at + 1 < len(parts) else "stdlib"
    return parts[-1]


def attribute(stats: pstats.Stats, n: int, top: int) -> None:
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    by_lib: dict[str, float] = defaultdict(float)
    for (filename, _, _), (_, _, tottime, _, _) in raw.items():
        by_lib[library(filename)] += tottime
    total = sum(by_lib.values())
    print(f"\nown CPU by library, ms per request (total {total * 1000 / n:.2f}):")
    for lib, t in sorted(by_lib.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {lib:60s} {t * 1000 / n:7.3f}")
    print("\nhandlers, cumulative ms per request (coroutine frames; callees included):")
    for (filename, _line, name), (_, calls, _, cum, _) in raw.items():
        if name in HANDLERS and filename.endswith("planner/app.py"):
            print(f"  {name:30s} {cum * 1000 / n:7.3f}  ({calls} frames)")
    stats.sort_stats("cumulative").print_callees(r"planner/app.py:\d+\((handle|on_answer)\)")


def handled(topic: str) -> float:
    """The planner's handled messages of `topic` (its histogram's count, read from the child: a whole collect() of
    the registry every few ms would be most of this process's CPU)."""
    child = STAGE_SECONDS.labels("planner", topic, "ok")
    return sum(bucket.get() for bucket in child._buckets)


async def until_handled(topic: str, count: float) -> None:
    end = time.monotonic() + 60
    while handled(topic) < count:
        if time.monotonic() > end:
            raise AssertionError(f"the planner did not handle {count} messages of {topic}")
        await asyncio.sleep(0.005)


class Fleet:
    def __init__(self, topics: Topics, producer: AIOKafkaProducer, reader: TopicReader) -> None:
        self.topics, self.producer, self.reader = topics, producer, reader

    async def send(self, message: Any, topic: str) -> None:
        await self.producer.send_and_wait(topic, message.model_dump_json().encode(), key=message.response_id.encode())

    async def one(self, i: int, full: bool) -> None:
        request = ChatRequest(response_id=f"r{uuid.uuid4().hex[:12]}", tenant_id="t-cpu", deadline_at=deadline_in(60),
                              mode="moe-orchestrator", messages=[ChatMessage(role="user", content=question(i, full))])
        await self.send(request, self.topics.requests)
        plan = (await self.reader.wait(self.topics.plans, lambda b: b["response_id"] == request.response_id))[0]
        if full:
            assert plan["source"] in ("llm", "plan_cache"), plan["source"]
        entries = handled(self.topics.cache_entries)
        await self.send(Answer(response_id=plan["response_id"], tenant_id="t-cpu", deadline_at=deadline_in(60),
                               mode="moe-orchestrator", content=ANSWER, cache_key=plan["cache_key"],
                               question=plan["question"]), self.topics.answers)
        await until_handled(self.topics.cache_entries, entries + 1)
        # the entry published and indexed; its Chroma write finishes in the answer's handler in the background, as in
        # the fleet: waiting for it here would make each batch one entry (cache_writes lingers for others); run()
        # waits for the last


async def run(n: int, full: bool, top: int, profile: bool, dump: str = "", idle_s: float = 10.0) -> None:
    async with running_planner(PLAN) as h, TopicReader(h.kafka, h.topics.plans) as reader:
        topics, fleet = h.topics, Fleet(h.topics, h.producer, reader)
        for i in range(10):  # warm-up
            await fleet.one(1000 + i, full)
        profiler = cProfile.Profile(time.process_time) if profile else None
        await until_handled(topics.cache_entries, 10)  # the warm-up's, indexed
        idle_cpu, idle_wall = time.process_time(), time.perf_counter()
        await asyncio.sleep(idle_s)  # the process idle (its consumers' long polls, the reader's fetches)
        idle = (time.process_time() - idle_cpu) / (time.perf_counter() - idle_wall)
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        for i in range(n):
            await fleet.one(i, full)
        await until_handled(topics.cache_entries, n + 10)  # every entry indexed
        await until_handled(topics.answers, n + 10)  # and written into Chroma by its answer's handler
        if profiler:
            profiler.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        kind = "full" if full else "trivial"
        print(f"{n} {kind} requests with their answers: {cpu * 1000 / n:.2f} ms CPU per request (whole "
              f"process: planner and the harness), {wall * 1000 / n:.1f} ms wall; idle {idle * 1000:.1f} ms "
              f"CPU per second, so {(cpu - idle * wall) * 1000 / n:.2f} ms per request net of idle")
        if profiler:
            stats = pstats.Stats(profiler)
            attribute(stats, n, top)
            if dump:
                stats.dump_stats(dump)
            stats.sort_stats("tottime").print_stats(top)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int, nargs="?", default=100)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--dump", default="", help="write the pstats here too")
    args = parser.parse_args()
    asyncio.run(run(args.n, args.full, args.top, not args.no_profile, args.dump))
