"""The gateway's Redis pool is bounded below a burst (issue 52 item 6): redis-py's pool keeps every connection it
ever opened, so a burst of 256 streams, whose key checks, reservations and stream records all ran at once, left
256 connections behind, and with them the memory the burst allocated around them (bench.gateway_memory 300 600
--warmup 100 --no-warmup-burst --streams 256 --trim: the gateway's RssAnon +20.1 MB at the first burst with a pool of
256, +15.8 with 32; flat afterwards). On real Redis, through the client the gateway builds: a burst of commands waits
for the pool's connections instead of opening one each, and every command is still answered."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from gateway.app import create_app
from gateway.settings import GatewaySettings

pytestmark = pytest.mark.infra
BURST = 256  # the bench's largest burst of streams (bench.streams)


async def test_a_burst_of_commands_opens_no_more_than_the_gateways_pool(infra: dict[str, str]) -> None:
    namespace = f"t{uuid.uuid4().hex[:8]}"
    settings = GatewaySettings(redis_url=infra["redis"], topic_namespace=namespace)
    app = create_app(settings, manage_broker=False)
    redis = app.state.edge.responses.redis  # the one Redis client of the edge (gateway.app)
    pool = redis.connection_pool
    keys = [f"{namespace}:pool:{i}" for i in range(BURST)]
    try:
        await asyncio.gather(*(redis.set(key, i, ex=60) for i, key in enumerate(keys)))
        opened = len(pool._available_connections) + len(pool._in_use_connections)
        assert await redis.mget(keys) == [str(i) for i in range(BURST)]  # every command of the burst answered
        assert opened <= settings.redis_max_connections < BURST, opened
    finally:
        await redis.delete(*keys)
        await redis.aclose()
