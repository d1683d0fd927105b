"""The fleet configuration's store on real Postgres and Redis (control_plane.fleet_config.store) and a stage's
client reading it (moe_core.llm.inference.live): an applied change is a new version the client picks up at its
next refresh; the overlay survives a lost Redis (the control plane publishes it again when it starts); one fleet's
changes (namespace) are not another's; a removed key is the environment's configuration again."""

from __future__ import annotations

import asyncpg
import pytest
from redis.asyncio import Redis

from control_plane.fleet_config.changes import ChangeIn, merge, plan
from control_plane.fleet_config.store import FleetConfigStore
from moe_core.llm.inference import InferenceClient
from moe_core.llm.inference.config import InferenceConfig
from moe_core.llm.inference.live import FleetOverrides, LiveOverrides, live_key
from moe_core.llm.inference.servers import InferenceServer, ModelRef
from tests.support.namespaces import new_namespace

pytestmark = pytest.mark.infra
BASE = InferenceConfig(servers=[InferenceServer(name="a", url="http://a", models=["m1"])],
                       roles={"default": [ModelRef(model="m1")]})


async def _applied(store: FleetConfigStore, section: str, name: str, value: object) -> int:
    change = ChangeIn(section=section, name=name, value=value)  # type: ignore[arg-type]
    planned = plan(change, BASE, [], await store.overlay())
    row = await store.propose(section, name, planned.value, (planned.before, planned.after), 0, ("p", "k"), "")

    def laid(over: FleetOverrides, found: asyncpg.Record) -> FleetOverrides:
        return merge(over, section, name, planned.value, BASE)

    _, new = await store.apply(row["id"], "p", laid)
    return new.version


async def test_a_change_reaches_a_client_and_survives_a_lost_redis(infra: dict[str, str], redis: Redis,
                                                                   namespace: str) -> None:
    pool = await asyncpg.create_pool(infra["postgres"], min_size=1, max_size=2)
    assert pool is not None
    client = InferenceClient(BASE, live=LiveOverrides(redis, namespace))
    try:
        store = FleetConfigStore(pool, redis, namespace)
        assert await client.refresh() == 0 and client.config is BASE  # no overlay: the environment's
        assert await _applied(store, "servers", "b", {"url": "http://b", "models": ["m2"], "api_key": "sk-b"}) == 1
        assert await _applied(store, "roles", "planner", ["m2@b"]) == 2
        assert await client.refresh() == 2
        assert [str(r) for r in client.config.for_role("planner")] == ["m2@b"]
        assert [s.name for s in client.config.servers] == ["a", "b"]

        await redis.delete(live_key(namespace))  # Redis lost its data: the environment's until the control plane
        assert await client.refresh() == 0 and [s.name for s in client.config.servers] == ["a"]
        assert await FleetConfigStore(pool, redis, namespace).publish() == 2  # ... starts again and publishes
        assert await client.refresh() == 2 and client.config.servers[1].api_key == "sk-b"

        other = new_namespace("t")  # another fleet on the same Postgres sees nothing of it
        assert (await FleetConfigStore(pool, redis, other).overlay()).version == 0
        assert await FleetConfigStore(pool, redis, other).recent(10) == []
        assert len(await store.recent(10)) == 2

        await redis.set(live_key(namespace), "{not json")  # a value it cannot read: the last good one stays
        assert await client.refresh() == 2 and [str(r) for r in client.config.for_role("planner")] == ["m2@b"]
    finally:
        await client.aclose()
        await pool.execute("DELETE FROM fleet_config_changes WHERE namespace = $1", namespace)
        await pool.execute("DELETE FROM fleet_config WHERE namespace = $1", namespace)
        await pool.close()
