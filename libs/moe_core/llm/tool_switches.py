"""The precision tools in the fleet's shared state (Redis), for the operator's switches:

    mcp:tools:<ns>       hash: tool name -> JSON {description, version}: what the mcp replicas serve, written by
                         each replica at start (the console lists it; it never imports the mcp service)
    mcp:disabled:<ns>    set of tool names switched off (moe_core.llm.switches, kind "tool"): read by the mcp stage
                         at most every MOE_TOOL_SWITCH_TTL_S through DisabledTools

A replica that cannot read the set keeps the last one it read (Redis down does not switch tools back on or off)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from moe_core.contracts.tools import ToolSpec
from moe_core.llm.switches import tools_key


def catalog_key(namespace: str) -> str:
    return f"mcp:tools:{namespace}"


async def publish_catalog(redis: Redis, namespace: str, specs: Iterable[ToolSpec]) -> None:
    listed = list(specs)
    if listed:
        await redis.hset(catalog_key(namespace), mapping={
            s.name: json.dumps({"description": s.description, "version": s.version}) for s in listed})


async def read_catalog(redis: Redis, namespace: str) -> dict[str, dict[str, Any]]:
    raw = await redis.hgetall(catalog_key(namespace))
    out = {}
    for name, value in raw.items():
        key = name.decode() if isinstance(name, bytes) else str(name)
        out[key] = json.loads(value)
    return dict(sorted(out.items()))


class DisabledTools:
    """The set of switched-off tools, read from Redis at most every `ttl_s` seconds."""

    def __init__(self, redis: Redis, namespace: str, ttl_s: float = 1.0) -> None:
        self.redis = redis
        self.key = tools_key(namespace)
        self.ttl_s = ttl_s
        self._names: frozenset[str] = frozenset()
        self._read_at = float("-inf")

    async def names(self) -> frozenset[str]:
        now = time.monotonic()
        if now - self._read_at >= self.ttl_s:
            try:
                members = await self.redis.smembers(self.key)
            except (RedisError, OSError):
                return self._names  # keep the last known switches
            self._names = frozenset(m.decode() if isinstance(m, bytes) else str(m) for m in members)
            self._read_at = now
        return self._names
