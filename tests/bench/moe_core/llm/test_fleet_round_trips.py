"""The inference fleet's Redis bookkeeping per model call (moe_core.llm.inference), counted with
moe_store_seconds against the real Redis and real HTTP inference servers (the scripted server):
none with one configured server; with several, the call's in-flight mark leaves in the pipeline that
records its success (views, mark, success: three round trips, never a separate uncount)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from moe_core.llm.inference import InferenceClient, InferenceConfig, InferenceFleet, InferenceServer, ModelRef
from moe_core.runtime.stores import redis_client
from tests.support.scripted_llm import create_app, start_server_thread
from tests.support.store_calls import own_ops

pytestmark = pytest.mark.infra  # real Redis (and Kafka where named)
MODEL = "trip-model"


@pytest.fixture(scope="module")
def urls() -> Iterator[list[str]]:
    running = [start_server_thread(app=create_app({"models": [MODEL], "rules": [], "default_reply": "ok"}))
               for _ in range(2)]
    yield [url for url, _ in running]
    for _, stop in running:
        stop()


async def _calls(client: InferenceClient, n: int, *, stream: bool = False) -> dict[str, float]:
    with own_ops("redis") as ops:
        for _ in range(n):
            if stream:
                [d async for d in client.stream([ModelRef(model=MODEL)], [{"role": "user", "content": "hi"}],
                                                user="u")]
            else:
                await client.chat([ModelRef(model=MODEL)], [{"role": "user", "content": "hi"}], user="u")
    return {op: float(n) for op, n in ops.items()}


@pytest.fixture
async def make(infra: dict[str, str], namespace: str) -> AsyncIterator[Any]:
    redis = redis_client(infra["redis"])
    clients: list[InferenceClient] = []

    def build(urls: list[str]) -> InferenceClient:
        config = InferenceConfig(servers=[InferenceServer(name=f"s{i}", url=u, max_retries=0)
                                          for i, u in enumerate(urls)], roles={"default": [ModelRef(model=MODEL)]})
        clients.append(InferenceClient(config, fleet=InferenceFleet(redis, namespace)))
        return clients[-1]

    yield build
    for client in clients:
        await client.aclose()
    await redis.delete(*[k async for k in redis.scan_iter(f"inference:{namespace}:*")] or ["-"])
    await redis.aclose()


async def test_one_server_costs_no_round_trip(make: Any, urls: list[str]) -> None:
    client = make(urls[:1])
    assert await _calls(client, 3) == {}
    assert await _calls(client, 2, stream=True) == {}


async def test_several_servers_three_round_trips_per_call_and_nothing_left_in_flight(
        make: Any, urls: list[str], namespace: str, infra: dict[str, str]) -> None:
    client = make(urls)
    ops = await _calls(client, 3)
    assert ops == {"pipeline": 6, "zadd": 3, "get": 3}  # views + success pipelines, the mark, the affinity read
    assert await _calls(client, 2, stream=True) == {"pipeline": 4, "zadd": 2, "get": 2}
    redis = redis_client(infra["redis"])
    try:
        for i in range(2):
            assert await redis.zcard(f"inference:{namespace}:inflight:s{i}") == 0  # every call uncounted
        assert await redis.get(f"inference:{namespace}:affinity:u:{MODEL}") in {"s0", "s1"}
    finally:
        await redis.aclose()
