"""The merger's CPU and Redis round trips per full request, in process (issue 52): the merger app on the real Kafka
and Redis (the infrastructure `make up` starts), N requests one at a time, each a plan of two expert tasks and a
graph task and their three results (as the bench's full path: thinking and judge, scripted); the process's CPU over
the requests / N (the merger, its Kafka clients and the script's producer and reader; and net of the process's
use while idle, measured for 5 s before: its consumers' polls and sweeps grow with the wall time, which the machine's
load stretches), the Redis round trips by
operation / N, and with --profile the cProfile of that stretch (top functions by own time). --trivial: the bench's
trivial path instead (a routed plan of one direct expert task and its result: the fast path, no model call).
Not a test: `.venv/bin/python -m tests.infra.merger.merger_cpu 200 [--trivial] [--profile]` inside the test
namespace."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "deploy" / "local"))

import fleetctl
from fleetlib import config as fleet_config

from merger.app import Merger, create_app
from merger.settings import MergerSettings
from moe_core.contracts import Plan, PlannedTask, TaskResult, Topics, Usage, deadline_in
from moe_core.llm.inference.live import LiveOverrides
from moe_core.runtime.kafka_clients import client_kwargs
from moe_core.runtime.observability.metrics import STORE_SECONDS
from tests.support.namespaces import new_namespace
from tests.support.scripted_llm import create_app as scripted_app
from tests.support.topic_reader import TopicReader

MODELS = '[{"name":"s","url":"http://s","models":["judge-model","think-model"],"max_retries":0}]'
IDLE_S = 5.0
TASKS = [("t1", "expert", "general"), ("t2", "expert", "science"), ("g1", "graph", "knowledge_graph")]


def messages(rid: str, trivial: bool = False) -> list[Plan | TaskResult]:
    if trivial:
        return [Plan(response_id=rid, tenant_id="t-cpu", deadline_at=deadline_in(60), mode="moe-orchestrator",
                     question="Hi, how are you?", complexity="trivial", source="router",
                     tasks=[PlannedTask(task_id="d1", category="general", instruction="answer")]),
                TaskResult(response_id=rid, tenant_id="t-cpu", deadline_at=deadline_in(60), task_id="d1",
                           category="general", content="Fine, thanks.", confidence="medium", model="expert-model",
                           server="s", usage=Usage(prompt_tokens=5, completion_tokens=3))]
    plan = Plan(response_id=rid, tenant_id="t-cpu", deadline_at=deadline_in(60), mode="moe-orchestrator",
                question="What about tides?", planner_model="planner-model", usage=Usage(prompt_tokens=3),
                tasks=[PlannedTask(task_id=t, kind=k, category=c, instruction=f"do {c}")  # type: ignore[arg-type]
                       for t, k, c in TASKS])
    return [plan, *[TaskResult(response_id=rid, tenant_id="t-cpu", deadline_at=deadline_in(60), task_id=t,
                               kind=k, category=c, content=f"{c}: the Moon pulls the sea.", confidence="medium",  # type: ignore[arg-type]
                               model="expert-model", server="s") for t, k, c in TASKS]]


def redis_ops() -> Counter[str]:
    return Counter({s.labels["op"]: s.value for m in STORE_SECONDS.collect() for s in m.samples
                    if s.name.endswith("_count") and s.labels.get("store") == "redis"})


async def run(n: int, profile: bool, trivial: bool = False) -> None:
    fleetctl.ensure_up(["kafka", "redis"])
    os.environ.update(fleet_config.kafka_admin_env())  # as tests/infra/conftest.py: the broker's admin
    infra = fleetctl.endpoints()
    namespace = new_namespace("cpu")
    llm = scripted_app({"models": ["judge-model", "think-model"], "rules": [
        {"model": "think-model", "reply": "Both say the Moon."}, {"model": "judge-model", "reply": "The Moon."}]})
    settings = MergerSettings(topic_namespace=namespace, kafka_bootstrap=infra["kafka"], redis_url=infra["redis"],
                              inference_servers=MODELS, research_fallback=False,
                              model_assignments='{"judge": ["judge-model"], "thinking": ["think-model"]}')
    app = create_app(settings, inference=None)
    merger: Merger = app.state.merger
    topics = Topics.for_namespace(namespace)
    producer = AIOKafkaProducer(**client_kwargs(bootstrap=infra["kafka"]), linger_ms=0)
    async with app.router.lifespan_context(app):
        # the fleet's client (its overlay reader on the merger's Redis), with the scripted models' transport
        client = merger.inference
        client._http = httpx.AsyncClient(transport=httpx.ASGITransport(app=llm))
        assert isinstance(client.live, LiveOverrides) or client.live is None
        await producer.start()
        try:
            async with TopicReader(infra["kafka"], topics.answers) as reader:
                async def one() -> None:
                    rid = f"r{uuid.uuid4().hex[:12]}"
                    for message in messages(rid, trivial):
                        topic = topics.plans if isinstance(message, Plan) else topics.results
                        await producer.send_and_wait(topic, message.model_dump_json().encode(), key=rid.encode())
                    await reader.wait(topics.answers, lambda b: b["response_id"] == rid)
                for _ in range(10):  # warm-up
                    await one()
                idle_cpu, idle_wall = time.process_time(), time.perf_counter()
                await asyncio.sleep(IDLE_S)  # the process's own use without requests (consumers' polls, sweeps)
                idle = (time.process_time() - idle_cpu) / (time.perf_counter() - idle_wall)
                profiler = cProfile.Profile(time.process_time) if profile else None  # CPU, not wall
                ops, cpu, wall = redis_ops(), time.process_time(), time.perf_counter()
                if profiler:
                    profiler.enable()
                for _ in range(n):
                    await one()
                if profiler:
                    profiler.disable()
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                trips = {op: round((c - ops.get(op, 0)) / n, 2) for op, c in redis_ops().items() if c - ops.get(op, 0)}
                kind = "trivial" if trivial else "full"
                print(f"{n} {kind} requests: {cpu * 1000 / n:.2f} ms CPU per request (whole process: merger, its Kafka "
                      f"clients, the script's producer and reader), {(cpu - idle * wall) * 1000 / n:.2f} net of its "
                      f"idle use ({idle * 1000:.1f} ms/s), {wall * 1000 / n:.1f} ms wall; Redis round trips per "
                      f"request {sum(trips.values()):.2f}: {trips}")
                if profiler:
                    pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
                    pstats.Stats(profiler).sort_stats("cumulative").print_stats(50)
        finally:
            await producer.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int, nargs="?", default=200)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--trivial", action="store_true")
    args = parser.parse_args()
    asyncio.run(run(args.n, args.profile, args.trivial))
