"""Clients of the fleet's stores, made one way everywhere."""

from __future__ import annotations

from redis.asyncio import Redis


def redis_client(url: str) -> Redis:
    return Redis.from_url(url, decode_responses=True, socket_connect_timeout=3, health_check_interval=30)


async def redis_ready(client: Redis) -> None:
    if not await client.ping():
        raise RuntimeError("Redis did not answer PING")
