"""The planner's CPU per trivial request, in process (issue 52): the planner app on the real Kafka, Redis and Chroma
(the infrastructure `make up` starts), N trivial requests one at a time, each a new question (so each is embedded);
the process's CPU over the requests / N beside what the plans' ledger says (Envelope.cost.cpu_ms), and with
--profile the cProfile of that stretch (top functions by own time).
With --full the questions are the bench's full ones (complex: not routed, so with the static cache no MiniLM runs).
MOE_CACHE_EMBEDDING=minilm|static chooses the cache's embedding (the before and after of issue 52's static cache).
Not a test: `.venv/bin/python -m tests.infra.planner.planner_cpu 200 [--full] [--profile [--dump FILE]]` inside the
test namespace."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import time
import uuid

from moe_core.contracts import ChatMessage, ChatRequest, deadline_in
from tests.infra.planner.harness import running_planner
from tests.support.topic_reader import TopicReader

PLAN = json.dumps({"tasks": [{"category": "general", "instruction": "answer"}]})
SUBJECTS = ["painted", "wrote", "discovered", "founded", "invented", "composed", "built", "named"]


def question(i: int, full: bool = False) -> str:
    if full:
        from bench.scenarios import full_question

        return f"{full_question(abs(i))} ({uuid.uuid4().hex[:6]})"
    return f"Who {SUBJECTS[i % len(SUBJECTS)]} the thing number {i} of {uuid.uuid4().hex[:6]}?"


async def run(n: int, profile: bool, full: bool = False, dump: str = "") -> None:
    async with running_planner(PLAN) as h, TopicReader(h.kafka, h.topics.plans) as reader:
        ledger: list[float] = []  # the Plan's (or Answer's) Envelope.cost.cpu_ms: what the record says the run took

        async def one(i: int) -> None:
            request = ChatRequest(response_id=f"r{uuid.uuid4().hex[:12]}", tenant_id="t-cpu",
                                  deadline_at=deadline_in(60), mode="moe-orchestrator",
                                  messages=[ChatMessage(role="user", content=question(i, full))])
            await h.producer.send_and_wait(h.topics.requests, request.model_dump_json().encode(),
                                           key=request.response_id.encode())
            [plan] = await reader.wait(h.topics.plans, lambda b: b["response_id"] == request.response_id)
            ledger.append((plan.get("cost") or {}).get("cpu_ms", 0.0))
        for i in range(10):  # warm-up
            await one(-1 - i)
        ledger.clear()
        profiler = cProfile.Profile(time.process_time) if profile else None  # CPU, not wall
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        for i in range(n):
            await one(i)
        if profiler:
            profiler.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        kind = "full" if full else "trivial"
        print(f"{n} {kind} requests ({h.settings.cache_embedding} cache): {cpu * 1000 / n:.2f} ms CPU per "
              f"request (whole process: planner, its Kafka clients, the test's producer and reader), "
              f"{wall * 1000 / n:.1f} ms wall; the plan's ledger says {sum(ledger) / n:.2f} ms CPU per request")
        if profiler:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(70)
            pstats.Stats(profiler).print_callers("_asdict_inner|deepcopy|to_json|validate_python")
            if dump:
                pstats.Stats(profiler).dump_stats(dump)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int, nargs="?", default=200)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--dump", default="", help="with --profile: write the pstats here too")
    args = parser.parse_args()
    asyncio.run(run(args.n, args.profile, args.full, args.dump))
