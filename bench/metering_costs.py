"""The edge's Redis work per request that misses the exact cache, as the gateway does it, against the real Redis:

  python -m bench.metering_costs [N] [REDIS_URL]

Per request: the reservation with the exact-cache lookup (gateway.metering.reserve; a miss), then the Answer as the
gateway's answers subscriber handles it (gateway.app: the record for feedback, the settlement's claim and finish;
the usage event handed to a no-op instead of the broker). Reports, per request, the Redis round trips (the services'
own counters, moe_store_seconds), this process's CPU and redis-server's CPU (INFO cpu), in ms; N requests (2,000 by
default) per run, 5 runs, the lowest and the median. Against the local fleet's Redis (started if it is not running)
or REDIS_URL.

For a before/after, run it with an older tree first on PYTHONPATH (as bench.edge_costs):
`git archive <rev> libs services/gateway | tar -x -C /tmp/before` and
`PYTHONPATH=.:/tmp/before/libs:/tmp/before/services/gateway python -m bench.metering_costs`.
"""

from __future__ import annotations

import inspect
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop
from redis.asyncio import Redis

import gateway.app  # noqa: F401 (the gateway process's modules loaded, as in production)
from bench.infra import connect
from gateway.feedback import AnswerRecorder
from gateway.metering import Metering
from gateway.settings import GatewaySettings
from moe_core.access.keystore import ApiKey
from moe_core.access.limits import Limiter, Limits
from moe_core.contracts import Answer, ChatMessage, ChatRequest, ModelUse, Usage, deadline_in
from moe_core.llm.exact_cache import ExactAnswers
from moe_core.runtime.stores import redis_client
from tests.support.store_calls import store_ops

TENANT = "t-bench-metering"


def _handler(answers: AnswerRecorder, metering: Metering,
             deliver: Callable[[Answer], Awaitable[None]]) -> Callable[[Answer], Awaitable[None]]:
    """The answers subscriber as gateway.app composes it (this tree's way, or the older one's)."""
    if len(inspect.signature(answers.recording).parameters) == 2:  # before: recording(settling(deliver), waiting)
        older: Any = answers.recording
        return older(getattr(metering, "settling")(deliver), lambda rid: True)  # noqa: B009 (older trees only)
    return answers.recording(metering, deliver, lambda rid: True)


async def _redis_cpu(client: Redis) -> float:
    info = await client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


async def _run(url: str, n: int) -> tuple[dict[str, float], float, float]:
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    redis = redis_client(url)
    plain = Redis.from_url(url, decode_responses=True)

    async def usage_published(charge: Any) -> None:
        return None

    async def delivered(answer: Answer) -> None:
        return None

    settings = GatewaySettings(topic_namespace=namespace)
    metering = Metering(settings, Limiter(redis, namespace), usage_published)
    handler = _handler(AnswerRecorder(redis, namespace, 3600), metering, delivered)
    exact = ExactAnswers(redis, namespace, 0)
    key = ApiKey(id=f"k{uuid.uuid4().hex[:10]}", name="k", role="user", tenant_ids=(TENANT,),
                 limits=Limits(requests_per_minute=10**6, tokens_per_day=10**12))

    async def one(i: int) -> None:
        request = ChatRequest(response_id=uuid.uuid4().hex, tenant_id=TENANT, deadline_at=deadline_in(60),
                              mode="moe-orchestrator",
                              messages=[ChatMessage(role="user", content=f"What is Kafka, question {i}?")])
        lookup = exact.lookup(request)
        await metering.reserve(key, request, "moe-orchestrator", lookup[0] if lookup is not None else None)
        await handler(Answer(response_id=request.response_id, tenant_id=TENANT, deadline_at=request.deadline_at,
                             mode="moe-orchestrator", content="Kafka is a distributed log.",
                             question=request.messages[-1].content,
                             models_used=[ModelUse(model="m", category="general")],
                             usage=Usage(prompt_tokens=40, completion_tokens=12)))

    try:
        for i in range(50):  # scripts loaded, connections open
            await one(i)
        trips, cpu, server = store_ops("redis"), time.process_time(), await _redis_cpu(plain)
        for i in range(n):
            await one(i)
        server = await _redis_cpu(plain) - server
        ops = {op: round((count - trips.get(op, 0)) / n, 2) for op, count in store_ops("redis").items()}
        return ({op: count for op, count in ops.items() if count}, (time.process_time() - cpu) * 1000 / n,
                server * 1000 / n)
    finally:
        async for k in plain.scan_iter(f"*{namespace}*", count=1000):
            await plain.delete(k)
        await redis.aclose()
        await plain.aclose()


def main(n: int, url: str) -> None:
    runs = [uvloop.run(_run(url, n)) for _ in range(5)]
    trips = {str(sorted(r[0].items())) for r in runs}
    edge, server = [r[1] for r in runs], [r[2] for r in runs]
    both = [r[1] + r[2] for r in runs]
    print(f"round trips per request, by command: {' | '.join(sorted(trips))} "
          f"(in all: {sorted({sum(r[0].values()) for r in runs})})")
    for name, values in (("gateway CPU", edge), ("redis-server CPU", server), ("gateway + redis", both)):
        print(f"{name}: lowest {min(values):.3f} ms, median {statistics.median(values):.3f} ms per request")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000,
         sys.argv[2] if len(sys.argv) > 2 else connect(["redis"])["redis"])
