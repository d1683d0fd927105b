"""Floating models on a fleet of Ollama servers (scripted servers speaking Ollama's API on local ports, the fleet's
state in the real Redis): the heartbeat reads each server's /api/ps, a floating expert goes to the server that has
its model warm, an expert's call on a server configured to unload takes the model out of VRAM and the next
heartbeat moves the model's calls to the server where it is still warm; with nothing warm anywhere, the higher
GPU-class priority wins."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from redis.asyncio import Redis

from expert_worker.tiers import TieredExpert
from moe_core.contracts import ExpertTask, deadline_in
from moe_core.llm.inference import InferenceClient, InferenceConfig, InferenceFleet, InferenceServer, ModelRef
from tests.support.scripted_llm import create_app, start_server_thread

pytestmark = pytest.mark.infra
MODEL = "qwen2.5:7b"
NAMES = ("a", "b")


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, tuple[str, Any]]]:
    """name -> (url, app) of two scripted Ollama servers that both have MODEL installed."""
    running: dict[str, tuple[str, Any]] = {}
    stops = []
    for name in NAMES:
        app = create_app({"models": [MODEL], "rules": [{"reply": f"CORE_FINDING: {name}\nCONFIDENCE: high"}]})
        url, stop = start_server_thread(app=app)
        running[name] = (url, app)
        stops.append(stop)
    yield running
    for stop in stops:
        stop()


@pytest.fixture
async def client(servers: dict[str, tuple[str, Any]], redis: Redis, namespace: str) -> AsyncIterator[InferenceClient]:
    for _, app in servers.values():
        app.state.scripted.set_loaded([])  # cold everywhere until a test warms a server
        app.state.scripted.clear_calls()
    config = InferenceConfig(servers=[
        InferenceServer(name="a", url=servers["a"][0], api="ollama", unload_after_expert=True, max_retries=0),
        InferenceServer(name="b", url=servers["b"][0], api="ollama", priority=5, max_retries=0),
    ], roles={"default": [ModelRef(model=MODEL)]}, experts={"math": [ModelRef(model=MODEL)]})
    inference = InferenceClient(config, fleet=InferenceFleet(redis, namespace, heartbeat_s=1))
    yield inference
    await inference.aclose()
    await redis.delete(*[k async for k in redis.scan_iter(f"inference:{namespace}:*")] or ["-"])


async def _beat(client: InferenceClient, redis: Redis, namespace: str) -> None:
    """One heartbeat of every server now (the interval's lock cleared first, as a new interval would)."""
    assert client.fleet is not None
    for server in client.config.servers:
        await redis.delete(f"inference:{namespace}:beat:{server.name}")
        await client.fleet.beat(server, client._http)


async def _expert(client: InferenceClient) -> str:
    task = ExpertTask(response_id="r1", tenant_id="t", deadline_at=deadline_in(30), task_id="t1",
                      category="math", instruction="2+2?", question="2+2?")
    result = await TieredExpert(client, None, max_tokens=100, max_output_chars=1000, parallel=1).run(
        task, [{"role": "user", "content": "2+2?"}])
    assert result.server is not None and result.content == f"{result.server}"
    return result.server


async def test_the_warm_server_is_preferred_and_an_unload_moves_the_model_on(
        client: InferenceClient, servers: dict[str, tuple[str, Any]], redis: Redis, namespace: str) -> None:
    await _beat(client, redis, namespace)
    assert await _expert(client) == "b"  # cold everywhere: the higher GPU-class priority
    servers["b"][1].state.scripted.set_loaded([])  # b's model expired from memory meanwhile
    servers["a"][1].state.scripted.set_loaded([MODEL])
    await _beat(client, redis, namespace)  # /api/ps: warm on a only
    assert '"qwen2.5:7b"' in (await redis.hgetall(f"inference:{namespace}:server:a"))["loaded"]
    assert await _expert(client) == "a"  # warm beats priority
    [call] = servers["a"][1].state.scripted.get_calls()
    assert call["body"]["keep_alive"] == 0  # a unloads after an expert: its VRAM is free for the judge
    await _beat(client, redis, namespace)
    assert (await redis.hgetall(f"inference:{namespace}:server:a"))["loaded"] == "[]"
    servers["b"][1].state.scripted.set_loaded([MODEL])
    await _beat(client, redis, namespace)
    for _ in range(2):  # warm on b now (b keeps its models: no keep_alive in its calls)
        assert await _expert(client) == "b"
    assert all("keep_alive" not in c["body"] for c in servers["b"][1].state.scripted.get_calls())
