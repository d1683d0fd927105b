"""The operator switches the console sets (moe_core.llm.switches), honoured where the fleet decides, in real
Redis: a disabled inference server looks unhealthy to the fleet (tried last); a disabled expert model is left
out of its category, never the category's last one."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from expert_worker.scoring import ScoreBoard
from moe_core.llm.inference import ModelRef
from moe_core.llm.inference.fleet import InferenceFleet, order_servers
from moe_core.llm.inference.servers import InferenceServer
from moe_core.llm.switches import Switches, expert_member

pytestmark = pytest.mark.infra


async def test_a_disabled_server_is_tried_last_and_back_first_when_enabled(redis: Redis, namespace: str) -> None:
    servers = [InferenceServer(name=n, url=f"http://{n}", models=[]) for n in ("a", "b")]
    fleet, switches = InferenceFleet(redis, namespace), Switches(redis, namespace)
    assert await switches.set("server", "a", enabled=False)
    assert not await switches.set("server", "a", enabled=False)  # already off: no change
    views = await fleet.views(servers)
    assert (views["a"].healthy, views["b"].healthy) == (False, True)
    assert [s.name for s in order_servers("m", servers, views, None)] == ["b", "a"]
    assert await switches.set("server", "a", enabled=True)
    views = await fleet.views(servers)
    assert [s.name for s in order_servers("m", servers, views, None)] == ["a", "b"]
    assert await switches.disabled("server") == set()


async def test_a_disabled_expert_model_is_left_out_of_its_category_only(redis: Redis, namespace: str) -> None:
    board = ScoreBoard(redis, namespace, min_score=0.3, min_ratings=3, half_life_s=0)
    switches = Switches(redis, namespace)
    refs = [ModelRef(model="m1"), ModelRef(model="m2")]
    await switches.set("expert", expert_member("math", "m1"), enabled=False)
    assert await board.usable("math", refs) == refs[1:]
    assert await board.usable("science", refs) == refs  # only that category
    await switches.set("expert", expert_member("math", "m2"), enabled=False)
    assert await board.usable("math", refs) == refs  # every model off: the category keeps them all
    await switches.set("expert", expert_member("math", "m1"), enabled=True)
    assert await board.usable("math", refs) == refs[:1]


async def test_a_disabled_tool_is_refused_by_the_registry_and_left_out_of_its_lists(redis: Redis,
                                                                                    namespace: str) -> None:
    from mcp_service.registry import Registry
    from mcp_service.runner import WorkerPool
    from moe_core.contracts.tools import select_tools
    from moe_core.llm.tool_switches import DisabledTools, publish_catalog, read_catalog

    specs = select_tools("calculate, hash_text")
    registry = Registry(specs, WorkerPool(1), switches=DisabledTools(redis, namespace, ttl_s=0))  # never started
    try:
        await publish_catalog(redis, namespace, specs.values())  # as each mcp replica does at start
        assert set(await read_catalog(redis, namespace)) == {"calculate", "hash_text"}
        switches = Switches(redis, namespace)
        assert await switches.set("tool", "hash_text", enabled=False)
        refused = await registry.ainvoke("hash_text", {"text": "x", "algorithm": "sha256"}, via="rest")
        assert (refused.ok, refused.code, refused.tool) == (False, "tool_disabled", "hash_text")
        assert "switched off" in refused.message and refused.version == specs["hash_text"].version
        assert [s.name for s in await registry.enabled_specs()] == ["calculate"]
        assert await switches.set("tool", "hash_text", enabled=True)
        assert [s.name for s in await registry.enabled_specs()] == ["calculate", "hash_text"]
    finally:
        registry.close()
