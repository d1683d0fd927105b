"""The semantic cache's CPU per request, in CPU seconds (not wall time), on the local Kafka, Redis and Chroma
(addresses and credentials from fleetlib, bench.infra):

  python -m bench.cache_costs [N]

A real planner app runs in this process (its own topic namespace, the real broker, Redis and Chroma). For N
fresh cacheable questions it is sent the request (a semantic-cache miss: planned), then the merger's Answer
(stored), then the same question again (a semantic-cache hit: answered by the planner); at the end it waits
until Chroma holds every entry (written behind in the new design). Counted: this process's CPU (the planner,
plus the harness's own producer and reader, the same in both trees) and the Chroma server's CPU (its
/proc/<pid>/stat), per question (one miss, one store, one hit). Two questions warm up first, not counted.

For a before/after, run it with an older tree first on PYTHONPATH:
`git archive <rev> libs services | tar -x -C /tmp/before` and
`PYTHONPATH=.:/tmp/before/libs:/tmp/before/services/planner python -m bench.cache_costs`.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
import time
import uuid
from typing import Any

from bench.infra import connect, pid_path

WARMUP = 2
ANSWER = ("Water boils at 100 degrees Celsius at sea level; the boiling point falls by about one degree for every "
          "300 metres of altitude, because the air pressure is lower up there.")


def _proc_cpu_s(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime of all threads


async def costs(n: int) -> None:
    import httpx
    from aiokafka import AIOKafkaProducer

    from moe_core.contracts import Answer, ChatMessage, ChatRequest, Envelope, Topics, deadline_in
    from moe_core.llm.inference import InferenceClient, InferenceConfig
    from moe_core.runtime.kafka_clients import client_kwargs
    from planner.app import create_app
    from planner.settings import PlannerSettings
    new_namespace = importlib.import_module("tests.support.namespaces").new_namespace
    scripted_app = importlib.import_module("tests.support.scripted_llm").create_app
    TopicReader = importlib.import_module("tests.support.topic_reader").TopicReader

    eps = connect(["kafka", "redis", "chroma"])
    namespace = new_namespace("b")
    llm = scripted_app({"models": ["p"], "rules": []})
    settings = PlannerSettings(topic_namespace=namespace, kafka_bootstrap=eps["kafka"], redis_url=eps["redis"],
                               chroma_url=eps["chroma"], router_enabled=False, cache_min_answer_chars=0,
                               inference_servers='[{"name":"s","url":"http://s","models":["p"],"max_retries":0}]')
    inference = InferenceClient(InferenceConfig.from_settings(settings),
                                httpx.AsyncClient(transport=httpx.ASGITransport(app=llm)))
    app = create_app(settings, inference=inference)
    planner = app.state.planner
    topics = Topics.for_namespace(namespace)
    producer = AIOKafkaProducer(**client_kwargs(bootstrap=eps["kafka"]), linger_ms=0)
    chroma_pid = int(pid_path("chroma").read_text().strip())

    async def send(message: Envelope, topic: str) -> None:
        await producer.send_and_wait(topic, message.model_dump_json().encode(), key=message.response_id.encode())

    async def ask(reader: Any, question: str, topic: str) -> dict[str, Any]:
        request = ChatRequest(response_id=uuid.uuid4().hex, tenant_id="bench", deadline_at=deadline_in(60),
                              mode="moe-orchestrator", messages=[ChatMessage(role="user", content=question)])
        await send(request, topics.requests)
        found: list[dict[str, Any]] = await reader.wait(topic, lambda b: b["response_id"] == request.response_id)
        return found[0]

    async def one(reader: Any, i: int) -> None:
        question = f"What is the boiling point of water {i} metres above sea level?"  # numbers: never each other's
        plan = await ask(reader, question, topics.plans)
        await send(Answer(response_id=plan["response_id"], tenant_id="bench", deadline_at=deadline_in(60),
                          mode="moe-orchestrator", content=ANSWER, cache_key=plan["cache_key"], question=question),
                   topics.answers)
        while await planner.redis.exists(f"planner:cachectx:{namespace}:{plan['cache_key']}"):  # noqa: ASYNC110
            await asyncio.sleep(0.02)  # stored (the pending note is deleted once the entry is written)
        hit = await ask(reader, question, topics.answers)
        assert hit["cache_hit"], f"no cache hit for {question!r}"

    async with app.router.lifespan_context(app):
        await producer.start()
        try:
            async with TopicReader(eps["kafka"], topics.plans, topics.answers) as reader:
                for i in range(WARMUP):
                    await one(reader, 10_000 + i)
                cpu, chroma, started = time.process_time(), _proc_cpu_s(chroma_pid), time.perf_counter()
                for i in range(n):
                    await one(reader, i)
                collection = await planner.vectors.collection(planner.cache.name)
                while await collection.count() < n + WARMUP:  # noqa: ASYNC110 - every entry in the durable copy
                    await asyncio.sleep(0.1)
                cpu, chroma = time.process_time() - cpu, _proc_cpu_s(chroma_pid) - chroma
                wall = time.perf_counter() - started
        finally:
            await producer.stop()
            await planner.vectors.drop(planner.cache.name)
    print(f"semantic cache, {n} questions (a miss, a store, a hit each): {cpu * 1000 / n:.1f} ms CPU in the planner "
          f"process (harness included), {chroma * 1000 / n:.1f} ms CPU in Chroma, per question "
          f"({wall:.1f} s wall, load average {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    asyncio.run(costs(int(sys.argv[1]) if len(sys.argv) > 1 else 30))
