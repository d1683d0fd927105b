"""Inference fleet: server order, failover past a dead server, loaded models, load, sticky affinity,
heartbeat registry. Real Redis and real HTTP servers (scripted inference servers on local ports)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from redis.asyncio import Redis

from moe_core.llm.inference import InferenceClient, InferenceConfig, InferenceFleet, InferenceServer, ModelRef
from moe_core.llm.inference.fleet import ServerView, order_servers
from tests.support.ports import free_port
from tests.support.scripted_llm import create_app, start_server_thread

pytestmark = pytest.mark.unit
MODEL = "fleet-model"


def _server(name: str, models: list[str] | None = None) -> InferenceServer:
    return InferenceServer(name=name, url=f"http://{name}", models=models or [])


def test_order_healthy_then_affinity_then_loaded_then_least_busy_then_config() -> None:
    a, b, c = _server("a"), _server("b"), _server("c")
    views = {"a": ServerView("a", inflight=5), "b": ServerView("b", inflight=1), "c": ServerView("c", inflight=1)}
    assert [s.name for s in order_servers(MODEL, [a, b, c], views, None)] == ["b", "c", "a"]
    views["c"].loaded = {MODEL}
    assert [s.name for s in order_servers(MODEL, [a, b, c], views, None)] == ["c", "b", "a"]
    assert [s.name for s in order_servers(MODEL, [a, b, c], views, "a")] == ["a", "c", "b"]
    views["a"].healthy = False
    assert [s.name for s in order_servers(MODEL, [a, b, c], views, "a")] == ["c", "b", "a"]
    views["b"].models = {"other-model"}  # the heartbeat saw that b does not have the model at all
    assert [s.name for s in order_servers(MODEL, [a, b, c], views, None)] == ["c", "a"]


def _dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # a port nobody listens on: connection refused


class Servers:
    def __init__(self) -> None:
        self.apps: dict[str, Any] = {}
        self.urls: dict[str, str] = {}
        self._stops: list[Any] = []

    def start(self, name: str) -> None:
        app = create_app({"models": [MODEL], "rules": [], "default_reply": f"answer from {name}"})
        url, stop = start_server_thread(app=app)
        self.apps[name], self.urls[name] = app, url
        self._stops.append(stop)

    def calls(self, name: str) -> int:
        return len(self.apps[name].state.scripted.get_calls())

    def stop(self) -> None:
        for stop in self._stops:
            stop()


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    running = Servers()
    for name in ("a", "b"):
        running.start(name)
    yield running
    running.stop()


@pytest.fixture
async def fleet_client(servers: Servers, redis: Redis, namespace: str) -> AsyncIterator[InferenceClient]:
    for app in servers.apps.values():
        app.state.scripted.set_loaded(None)
        app.state.scripted.up()
        app.state.scripted.clear_calls()
    config = InferenceConfig(servers=[
        InferenceServer(name="dead", url=_dead_url(), models=[MODEL], max_retries=0, connect_timeout_s=1),
        InferenceServer(name="a", url=servers.urls["a"], max_retries=0),
        InferenceServer(name="b", url=servers.urls["b"], max_retries=0),
    ], roles={"default": [ModelRef(model=MODEL)]})
    client = InferenceClient(config, fleet=InferenceFleet(redis, namespace, unhealthy_s=60, heartbeat_s=1))
    yield client
    await client.aclose()
    await redis.delete(*[k async for k in redis.scan_iter(f"inference:{namespace}:*")] or ["-"])


async def _ask(client: InferenceClient, user: str | None = None) -> str:
    completion = await client.chat([ModelRef(model=MODEL)], [{"role": "user", "content": "hi"}], user=user)
    return completion.server


@pytest.mark.infra  # real stores
async def test_a_dead_server_is_skipped_and_then_ordered_last(fleet_client: InferenceClient, redis: Redis,
                                                              namespace: str) -> None:
    answered_by = await _ask(fleet_client)
    assert answered_by in {"a", "b"}  # "dead" came first in the configuration and refused the connection
    assert await redis.exists(f"inference:{namespace}:down:dead")
    targets = await fleet_client._ordered_targets([ModelRef(model=MODEL)], None)
    assert targets[-1][1].name == "dead"


@pytest.mark.infra  # real stores
async def test_heartbeat_registry_and_the_loaded_model_preference(fleet_client: InferenceClient, servers: Servers,
                                                                  redis: Redis, namespace: str) -> None:
    assert fleet_client.fleet is not None
    servers.apps["a"].state.scripted.set_loaded([])  # a has the model installed but not in memory
    for server in fleet_client.config.servers:
        await fleet_client.fleet.beat(server, fleet_client._http)
    beat = await redis.hgetall(f"inference:{namespace}:server:b")
    assert beat["healthy"] == "1" and MODEL in beat["loaded"]
    assert (await redis.hgetall(f"inference:{namespace}:server:dead"))["healthy"] == "0"
    assert 0 < await redis.ttl(f"inference:{namespace}:server:b") <= 3
    for _ in range(3):
        assert await _ask(fleet_client) == "b"
    assert servers.calls("a") == 0
    servers.apps["b"].state.scripted.down()  # b dies: the next heartbeat says so and a takes over
    await redis.delete(f"inference:{namespace}:beat:b")
    await fleet_client.fleet.beat(fleet_client.config.servers[2], fleet_client._http)
    assert await _ask(fleet_client) == "a"


@pytest.mark.infra  # real stores
async def test_least_busy_server_and_sticky_user_affinity(fleet_client: InferenceClient, servers: Servers,
                                                          redis: Redis, namespace: str) -> None:
    fleet = fleet_client.fleet
    assert fleet is not None
    first = await _ask(fleet_client, user="alice")
    other = "b" if first == "a" else "a"
    assert await redis.get(f"inference:{namespace}:affinity:alice:{MODEL}") == first
    assert 0 < await redis.ttl(f"inference:{namespace}:affinity:alice:{MODEL}") <= fleet.affinity_ttl_s
    async with fleet.running(first), fleet.running(first):  # two calls in flight on alice's server
        assert await _ask(fleet_client, user="alice") == first  # sticky despite the load
        assert await _ask(fleet_client, user="bob") == other  # a new user goes to the least busy server
        assert await _ask(fleet_client) == other
    assert await redis.zcard(f"inference:{namespace}:inflight:{first}") == 0  # finished calls are uncounted


@pytest.mark.infra  # real stores
async def test_every_server_down_still_tries_them_all_and_reports_the_failure(
        fleet_client: InferenceClient, servers: Servers) -> None:
    for app in servers.apps.values():
        app.state.scripted.down()
    with pytest.raises(Exception) as failure:
        await _ask(fleet_client)
    assert "3 attempts failed" in str(failure.value)
    for app in servers.apps.values():
        app.state.scripted.up()
    assert await _ask(fleet_client) in {"a", "b"}  # marked down, but still tried: they answer again
