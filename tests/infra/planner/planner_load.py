"""The planner's whole process per request, measured from outside it (issue 52): the planner app runs alone in a
child process (tests.infra.planner.harness: the real Kafka, Redis, Chroma and OPA, a scripted planner model), this
process sends what the fleet would (a request, then the merger's answer once the plan is out) and waits for the plan
and the cache entry, so the child's CPU is the planner's own: its handlers, its Kafka clients' fetches and produces,
the cache index and its Chroma copy, Redis, metrics, asyncio. The child reports its CPU over the requests (gross, and
net of its idle rate measured just before), the Redis and Chroma round trips (moe_store_seconds) and the Kafka
requests (by kind) per request; --profile FILE: the child's cProfile (CPU clock) of the same stretch, --strace FILE:
its system calls counted (strace -c). py-spy is no help on a loaded host: it samples a thread that is runnable, not
running, so a preempted socket write or clock read looks like CPU. Not a test:
`.venv/bin/python -m tests.infra.planner.planner_load 200 [--full] [--pace MS --no-stream] [--profile FILE]
[--strace FILE]` inside the test namespace (--full: the bench's full questions, planned by the model; else trivial
ones, routed; --pace 40 --no-stream: the cadence of the bench's non-streaming cells at concurrency 1, where the
next request comes once the answer is out, not once the cache has it)."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ANSWER = ("Leonardo da Vinci painted the Mona Lisa between about 1503 and 1519; it hangs in the Louvre in Paris, "
          "behind glass, and is one of the most visited paintings in the world.")
PLAN = json.dumps({"tasks": [{"category": "general", "instruction": "answer"},
                             {"category": "technical_support", "instruction": "check"}]})


def question(i: int, full: bool) -> str:
    from bench.scenarios import full_question, trivial_question

    return full_question(i) if full else trivial_question(i)  # each distinct, as in the bench's cells


# --- the child: the planner alone -------------------------------------------------------------------------------

def _count_kafka_requests(kinds: Counter[str]) -> None:
    from aiokafka.conn import AIOKafkaConnection

    send = AIOKafkaConnection.send

    def counted(self: Any, request: Any, expect_response: bool = True) -> Any:
        kinds[type(request).__name__.removesuffix("Request").rstrip("_v0123456789")] += 1
        return send(self, request, expect_response)
    AIOKafkaConnection.send = counted


def _stores() -> Counter[str]:
    from moe_core.runtime.observability.metrics import STORE_SECONDS

    return Counter({f"{s.labels['store']}:{s.labels['op']}": int(s.value) for m in STORE_SECONDS.collect()
                    for s in m.samples if s.name.endswith("_count")})


def collections() -> list[int]:
    return [generation["collections"] for generation in gc.get_stats()]


async def serve() -> None:
    from tests.infra.planner.harness import running_planner
    from tests.infra.planner.planner_profile import until_handled

    kafka: Counter[str] = Counter()
    _count_kafka_requests(kafka)
    loop = asyncio.get_running_loop()

    async def line() -> str:
        return (await loop.run_in_executor(None, sys.stdin.readline)).strip()

    def say(what: dict[str, Any]) -> None:
        print(json.dumps(what), flush=True)

    async with running_planner(PLAN) as h:
        gc.collect()  # as a service process does before it serves (moe_core.runtime.service.run): what the start
        gc.freeze()  # made frozen out of the collector's way (without it perf saw ~20 % of the child in the collector)
        t = h.topics
        say({"kafka": h.kafka, "requests": t.requests, "plans": t.plans, "answers": t.answers,
             "cache_entries": t.cache_entries})
        while (command := (await line()).split()) and command[0] != "quit":
            if command[0] == "idle":  # the idle rate: its consumers' polls and heartbeats, nothing to handle
                cpu, wall = time.process_time(), time.perf_counter()
                await asyncio.sleep(float(command[1]))
                say({"idle_cpu_per_s": (time.process_time() - cpu) / (time.perf_counter() - wall)})
            elif command[0] == "start":
                dump = command[2] if len(command) > 2 else ""
                profiler = cProfile.Profile(time.process_time) if dump else None
                start = (os.times(), time.perf_counter(), _stores(), Counter(kafka), collections())
                if profiler is not None:
                    profiler.enable()
                say({"started": True})
            elif command[0] == "stop":  # the last answers stored (Chroma's copy too) and indexed, then the figures
                await until_handled(t.answers, float(command[1]))
                await until_handled(t.cache_entries, float(command[1]))
                if profiler is not None:
                    profiler.disable()
                    profiler.dump_stats(dump)
                end = os.times()
                say({"user_s": end.user - start[0].user, "system_s": end.system - start[0].system,
                     "wall_s": time.perf_counter() - start[1], "stores": _stores() - start[2],
                     "kafka": kafka - start[3], "gc": [n - m for n, m in zip(collections(), start[4], strict=True)]})


# --- the parent: the fleet around it ----------------------------------------------------------------------------

class Child:
    def __init__(self, log: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.infra.planner.planner_load", "--serve"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log.open("w"), text=True)

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            text = self.proc.stdout.readline()
            if not text:
                raise RuntimeError("the planner child ended; see its log")
            if text.startswith("{"):
                return dict(json.loads(text))

    def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.read()


async def drive(n: int, full: bool, idle_s: float, profile: str = "", trace: str = "", pace_ms: float | None = None,
                live: bool = True) -> None:
    from aiokafka import AIOKafkaProducer

    from moe_core.contracts import Answer, ChatMessage, ChatRequest, deadline_in
    from moe_core.runtime.kafka_clients import client_kwargs
    from tests.infra.planner.harness import fleet_config
    from tests.support.topic_reader import TopicReader

    os.environ.update(fleet_config.kafka_admin_env())  # the broker's credentials, as the child's harness
    child = Child(Path(os.environ.get("PLANNER_LOAD_LOG", "/tmp/planner_load_child.log")))
    try:
        t = await asyncio.to_thread(child.read)
        producer = AIOKafkaProducer(**client_kwargs(bootstrap=t["kafka"]), linger_ms=0)
        await producer.start()
        async with TopicReader(t["kafka"], t["plans"], t["cache_entries"]) as reader:
            async def send(message: Any, topic: str) -> None:
                await producer.send_and_wait(topic, message.model_dump_json().encode(),
                                             key=message.response_id.encode())

            async def one(i: int) -> str:
                request = ChatRequest(response_id=f"r{uuid.uuid4().hex[:12]}", tenant_id="t-load",
                                      deadline_at=deadline_in(60), mode="moe-orchestrator", live=live,
                                      messages=[ChatMessage(role="user", content=question(i, full))])
                await send(request, t["requests"])
                [plan] = await reader.wait(t["plans"], lambda b: b["response_id"] == request.response_id)
                if pace_ms is not None:  # the rest of the pipeline's time (experts, merger), then the next request
                    await asyncio.sleep(pace_ms / 1000)
                await send(Answer(response_id=plan["response_id"], tenant_id="t-load", deadline_at=deadline_in(60),
                                  mode="moe-orchestrator", content=ANSWER, cache_key=plan["cache_key"],
                                  question=plan["question"]), t["answers"])
                if pace_ms is None:
                    await reader.wait(t["cache_entries"], lambda b: b["cache_key"] == plan["cache_key"])
                return str(plan["source"])

            for i in range(10):  # warm-up
                await one(100_000 + i)
            idle = (await asyncio.to_thread(child.ask, f"idle {idle_s}"))["idle_cpu_per_s"]
            tracer = (subprocess.Popen(["strace", "-c", "-f", "-o", trace, "-p", str(child.proc.pid)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) if trace else None)
            if tracer is not None:
                await asyncio.sleep(2)  # attached to every thread
            await asyncio.to_thread(child.ask, f"start profile {profile}" if profile else "start")
            sources = Counter([await one(i) for i in range(n)])
            done = await asyncio.to_thread(child.ask, f"stop {n + 10}")  # with the warm-up's
            if tracer is not None:
                tracer.send_signal(signal.SIGINT)
                tracer.wait(30)
        await producer.stop()
    finally:
        if child.proc.poll() is None:
            child.proc.stdin.write("quit\n")  # type: ignore[union-attr]
            child.proc.stdin.flush()  # type: ignore[union-attr]
            child.proc.wait(60)
    cpu, wall = done["user_s"] + done["system_s"], done["wall_s"]
    print(f"{n} {'full' if full else 'trivial'} requests ({dict(sources)}), planner process alone: "
          f"{cpu * 1000 / n:.2f} ms CPU per request gross (user {done['user_s'] * 1000 / n:.2f}, system "
          f"{done['system_s'] * 1000 / n:.2f}), {(cpu - idle * wall) * 1000 / n:.2f} net of idle "
          f"({idle * 1000:.1f} ms CPU/s idle), {wall * 1000 / n:.1f} ms wall")
    print("round trips per request:", {k: round(v / n, 2) for k, v in sorted(done["stores"].items())})
    print("Kafka requests per request:", {k: round(v / n, 2) for k, v in sorted(done["kafka"].items())})
    print("garbage collections per request (young, middle, full):", [round(c / n, 3) for c in done["gc"]])


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int, nargs="?", default=200)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--profile", default="", help="the planner process's cProfile of the requests, here")
    parser.add_argument("--strace", default="", help="its system calls over the requests, counted, here")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of the idle rate's measurement")
    parser.add_argument("--pace", type=float, default=None,
                        help="as the bench's cells at concurrency 1: the answer MS after the plan, and the next "
                             "request right after it, not after its cache entry (the write-behind's lingering fetch "
                             "is not waited for)")
    parser.add_argument("--no-stream", action="store_true",
                        help="requests of a client that does not stream (ChatRequest.live false: no progress events)")
    parser.add_argument("--serve", action="store_true", help="(the child: the planner)")
    args = parser.parse_args()
    asyncio.run(serve() if args.serve else drive(args.n, args.full, args.idle, args.profile, args.strace, args.pace,
                                                 not args.no_stream))
