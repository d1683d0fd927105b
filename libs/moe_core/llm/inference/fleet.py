"""The inference fleet's shared state in Redis: which server is healthy, which models it has loaded, how
busy it is, and which server a user last used (sticky affinity keeps a user's KV cache warm).

Keys (namespace = MOE_TOPIC_NAMESPACE, so test fleets never share state):
  inference:<ns>:server:<name>      hash  healthy 0/1, loaded (JSON list), models (JSON list), checked_at
                                          (written by the heartbeat; expires after 3 heartbeats)
  inference:<ns>:down:<name>        str   set for MOE_INFERENCE_UNHEALTHY_S after a failed call
  inference:<ns>:inflight:<name>    zset  one member per running call (score = start time)
  inference:<ns>:affinity:<user>:<model>  str  server name, TTL MOE_INFERENCE_AFFINITY_TTL_S; <user> is the
                                          client's `user`, else `principal:<id>` of its key (`affinity_user`)
  inference:<ns>:beat:<name>        str   heartbeat lock: one poller per server and interval in the fleet

The bookkeeping costs Redis round trips on every model call, so it is kept only where it can change a
decision: with a single configured server there is no order to choose and nothing is read or written per
call (moe_core.llm.inference.client); with several, a finished call's in-flight mark leaves in the same
pipeline that records its success.

Order of the servers a floating model (`model` without `@server`) may use: healthy before unhealthy,
then the user's affinity server, then servers where the model is already loaded (Ollama's /api/ps, OpenAI's
/v1/models, from the heartbeat), then the least busy (running calls per GPU, `gpu_count`), then the higher
GPU-class `priority`, then configuration order. Unhealthy servers stay in the list, last: when every server
looks down, they are still tried.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError

from moe_core.llm.inference.servers import InferenceServer
from moe_core.llm.switches import servers_key

log = logging.getLogger(__name__)
INFLIGHT_HORIZON_S = 600.0


def affinity_user(user: str | None, principal_id: str | None) -> str | None:
    """Who a request's model calls stick to (ChatRequest.user): the client's `user` field, else the principal its
    API key belongs to (a client that sends no `user` still keeps its server and its warm KV cache)."""
    if user:
        return user
    return f"principal:{principal_id}" if principal_id else None


@dataclass
class ServerView:
    """What the fleet knows about one server right now."""

    name: str
    healthy: bool = True
    loaded: set[str] = field(default_factory=set)
    models: set[str] = field(default_factory=set)  # available (heartbeat), empty = unknown
    inflight: int = 0


@dataclass
class Slot:
    """One call's in-flight mark (a member of the server's inflight zset)."""

    key: str
    member: str
    counted: bool = False
    released: bool = False


def _base(model: str) -> str:
    return model[: -len(":latest")] if model.endswith(":latest") else model


def order_servers(model: str, servers: list[InferenceServer], views: dict[str, ServerView],
                  affinity: str | None) -> list[InferenceServer]:
    """Pure ordering of the candidate servers of a floating model (see the module docstring)."""
    def has(server: InferenceServer) -> bool:
        view = views.get(server.name)
        return server.models != [] or view is None or not view.models or _base(model) in view.models

    def key(item: tuple[int, InferenceServer]) -> tuple[bool, bool, bool, float, int, int]:
        index, server = item
        view = views.get(server.name) or ServerView(server.name)
        return (not view.healthy, server.name != affinity, _base(model) not in view.loaded,
                view.inflight / server.gpu_count, -server.priority, index)

    usable = [s for s in servers if has(s)] or servers
    return [s for _, s in sorted(enumerate(usable), key=key)]


class InferenceFleet:
    def __init__(self, redis: Redis, namespace: str, *, unhealthy_s: float = 15.0, affinity_ttl_s: int = 600,
                 heartbeat_s: float = 10.0) -> None:
        self.redis = redis
        self.prefix = f"inference:{namespace}"
        self.namespace = namespace
        self.unhealthy_s = unhealthy_s
        self.affinity_ttl_s = affinity_ttl_s
        self.heartbeat_s = heartbeat_s

    # -- reading -----------------------------------------------------------------------------
    async def views(self, servers: list[InferenceServer]) -> dict[str, ServerView]:
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        for server in servers:
            pipe.hgetall(f"{self.prefix}:server:{server.name}")
            pipe.exists(f"{self.prefix}:down:{server.name}")
            pipe.zcount(f"{self.prefix}:inflight:{server.name}", now - INFLIGHT_HORIZON_S, "+inf")
        pipe.smembers(servers_key(self.namespace))  # the operator's switches (moe_core.llm.switches)
        raw = await pipe.execute()
        disabled = raw.pop()
        views: dict[str, ServerView] = {}
        for i, server in enumerate(servers):
            beat, down, inflight = raw[3 * i], raw[3 * i + 1], raw[3 * i + 2]
            view = ServerView(server.name, inflight=int(inflight))
            if beat:
                view.healthy = beat.get("healthy") == "1"
                view.loaded = {_base(m) for m in json.loads(beat.get("loaded") or "[]")}
                view.models = {_base(m) for m in json.loads(beat.get("models") or "[]")}
            if down or server.name in disabled:
                view.healthy = False
            views[server.name] = view
        return views

    async def affinity(self, user: str | None, model: str) -> str | None:
        if not user:
            return None
        value = await self.redis.get(f"{self.prefix}:affinity:{user}:{model}")
        return str(value) if value else None

    # -- writing -----------------------------------------------------------------------------
    @asynccontextmanager
    async def running(self, server: str) -> AsyncIterator[Slot]:
        """Count a call as in flight on `server` while it runs (`succeeded(..., slot)` uncounts it in its own
        round trip; otherwise it is uncounted on the way out)."""
        slot = Slot(f"{self.prefix}:inflight:{server}", uuid.uuid4().hex)
        slot.counted = await self._quietly(self.redis.zadd(slot.key, {slot.member: time.time()}),
                                           "load counter") is not None
        try:
            yield slot
        finally:
            if slot.counted and not slot.released:
                await self._quietly(self.redis.zrem(slot.key, slot.member), "load counter")

    @staticmethod
    async def _quietly(step: Awaitable[Any], what: str) -> Any:
        """Fleet bookkeeping never fails a call: without Redis the configuration order still works."""
        try:
            return await step
        except (RedisError, OSError) as exc:
            log.warning("fleet %s unavailable: %s", what, exc)
            return None

    async def succeeded(self, server: str, model: str, user: str | None, slot: Slot | None = None) -> None:
        """One round trip: the server is up, the user sticks to it, and the call no longer counts as running."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.delete(f"{self.prefix}:down:{server}")
        if user:
            pipe.set(f"{self.prefix}:affinity:{user}:{model}", server, ex=self.affinity_ttl_s)
        release = slot is not None and slot.counted and not slot.released
        if slot is not None and release:
            pipe.zrem(slot.key, slot.member)
        await pipe.execute()
        if slot is not None and release:
            slot.released = True

    async def failed(self, server: str, reason: str) -> None:
        """A server that refused, timed out or answered 5xx is skipped first for a while."""
        await self.redis.set(f"{self.prefix}:down:{server}", reason[:200], px=int(self.unhealthy_s * 1000))

    # -- heartbeat ---------------------------------------------------------------------------
    async def beat(self, server: InferenceServer, http: httpx.AsyncClient) -> ServerView | None:
        """Poll one server (unless another process did in this interval) and publish what it has loaded."""
        lock = f"{self.prefix}:beat:{server.name}"
        if not await self.redis.set(lock, "1", nx=True, px=max(int(self.heartbeat_s * 1000) - 50, 100)):
            return None
        view = await probe(server, http)
        key = f"{self.prefix}:server:{server.name}"
        await self.redis.hset(key, mapping={
            "healthy": "1" if view.healthy else "0", "loaded": json.dumps(sorted(view.loaded)),
            "models": json.dumps(sorted(view.models)), "checked_at": str(time.time())})
        await self.redis.expire(key, max(int(self.heartbeat_s * 3), 3))
        if view.healthy:
            await self.redis.delete(f"{self.prefix}:down:{server.name}")
        return view

    async def run_heartbeat(self, servers: Callable[[], list[InferenceServer]], http: httpx.AsyncClient) -> None:
        """servers: the servers in force at each beat (the console may add or remove one)."""
        while True:
            await asyncio.gather(*(self._beat_safely(s, http) for s in servers()))
            await asyncio.sleep(self.heartbeat_s)

    async def _beat_safely(self, server: InferenceServer, http: httpx.AsyncClient) -> None:
        try:
            await self.beat(server, http)
        except Exception as exc:  # Redis hiccup: the next beat tries again; calls still work without it
            log.warning("heartbeat of %s failed: %s: %s", server.name, type(exc).__name__, exc)


async def probe(server: InferenceServer, http: httpx.AsyncClient) -> ServerView:
    """Ask a server what it has: Ollama /api/ps (loaded) and /api/tags (installed); OpenAI /v1/models."""
    view = ServerView(server.name)
    headers = {"Authorization": f"Bearer {server.api_key}"} if server.api_key else {}
    timeout = httpx.Timeout(min(server.timeout_s, 5.0), connect=min(server.connect_timeout_s, 3.0))
    try:
        if server.api == "ollama":
            ps = await http.get(f"{server.url}/api/ps", headers=headers, timeout=timeout)
            tags = await http.get(f"{server.url}/api/tags", headers=headers, timeout=timeout)
            ps.raise_for_status()
            tags.raise_for_status()
            view.loaded = {_base(m.get("name") or m.get("model", "")) for m in ps.json().get("models", [])}
            view.models = {_base(m.get("name") or m.get("model", "")) for m in tags.json().get("models", [])}
        else:
            models = await http.get(f"{server.url}/v1/models", headers=headers, timeout=timeout)
            models.raise_for_status()
            view.models = {_base(str(m.get("id", ""))) for m in models.json().get("data", [])}
            view.loaded = set(view.models)  # OpenAI-compatible servers list what they serve now
    except (httpx.HTTPError, aiohttp.ClientError, TimeoutError, ValueError, AttributeError) as exc:
        log.info("server %s looks down: %s: %s", server.name, type(exc).__name__, exc)
        view.healthy = False
    view.loaded.discard("")
    view.models.discard("")
    return view
