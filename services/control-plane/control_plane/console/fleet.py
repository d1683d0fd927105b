"""Console page for inference servers and experts.

Servers: what the fleet's shared state in Redis says (moe_core.llm.inference.fleet: healthy, loaded models,
calls in flight) plus a live probe from this page (the same probe the heartbeat runs) and its round trip.
Experts: the feedback scores the expert-worker keeps in Redis (global and per tenant, see _scores), shown
with the expert-worker's formula, score = (positive + neutral / 2 + 1) / (ratings + 2), from the counts as
last written (the decay towards the prior is applied when the next rating arrives).
Tools: the precision tools the mcp replicas serve (their catalog in Redis, moe_core.llm.tool_switches).
Enable/disable: the operator switches of moe_core.llm.switches; every switch is an audit event (actor: the key).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import httpx
from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from redis.asyncio import Redis

from control_plane.admin.key_audit import change_event
from control_plane.console.core import ConsoleCore
from control_plane.console.sessions import Session
from moe_core.llm.inference.config import InferenceConfig, InferenceServer
from moe_core.llm.inference.fleet import InferenceFleet, probe
from moe_core.llm.inference.live import LiveOverrides
from moe_core.llm.switches import Kind, Switches, expert_member
from moe_core.llm.tool_switches import read_catalog
from moe_core.runtime.bus import Bus
from moe_core.runtime.settings import FleetSettings

MAX_SCORES = 500


def score(counts: Mapping[Any, Any]) -> dict[str, Any]:
    pos, neg, neu = (float(counts.get(k) or 0) for k in ("pos", "neg", "neu"))
    return {"positive": round(pos, 2), "negative": round(neg, 2), "neutral": round(neu, 2),
            "ratings": int(counts.get("n") or 0), "score": round((pos + neu / 2 + 1) / (pos + neg + neu + 2), 3)}


class FleetPage:
    def __init__(self, core: ConsoleCore, settings: FleetSettings, redis: Redis, bus: Bus) -> None:
        self.core = core
        self.settings = settings
        self.redis = redis
        self.bus = bus
        self.namespace = settings.topic_namespace
        self.switches = Switches(redis, self.namespace)
        core.page("/fleet", self.fleet)
        core.page("/fleet/servers/{name}", self.switch_server, "POST")
        core.page("/fleet/experts/{category}/{model}", self.switch_expert, "POST")
        core.page("/fleet/tools/{name}", self.switch_tool, "POST")

    async def config(self) -> InferenceConfig:
        """The servers and experts in force: the environment's with the Configuration page's changes
        (moe_core.llm.inference.live), as the stages use them."""
        live = LiveOverrides(self.redis, self.namespace)
        await live.changed()
        return InferenceConfig.from_settings(self.settings).with_overrides(live.current)

    async def fleet(self, request: Request, s: Session, *, status: int = 200, error: str | None = None) -> Response:
        config = await self.config()
        views = await InferenceFleet(self.redis, self.namespace).views(config.servers)
        off_servers, off_experts = await self.switches.disabled("server"), await self.switches.disabled("expert")
        off_tools = await self.switches.disabled("tool")
        tools = [{"name": name, **info, "enabled": name not in off_tools}
                 for name, info in (await read_catalog(self.redis, self.namespace)).items()]
        async with httpx.AsyncClient() as http:
            probes = await asyncio.gather(*(_timed_probe(server, http) for server in config.servers))
        servers = [{"name": srv.name, "url": srv.url, "api": srv.api, "shared": views[srv.name], "probe": found,
                    "enabled": srv.name not in off_servers}
                   for srv, found in zip(config.servers, probes, strict=True)]
        experts = [{"category": category, "model": ref.model, "ref": str(ref), "tier": ref.tier,
                    "enabled": expert_member(category, ref.model) not in off_experts}
                   for category, refs in sorted(config.experts.items()) for ref in refs]
        return self.core.render(request, "fleet.html", s, status=status, error=error, servers=servers,
                                experts=experts, scores=await self._scores(), single=len(config.servers) < 2,
                                tools=tools)

    async def switch_server(self, request: Request, s: Session) -> Response:
        name = request.path_params["name"]
        if name not in {srv.name for srv in (await self.config()).servers}:
            return await self.fleet(request, s, status=404, error=f"No configured inference server '{name}'.")
        return await self._switch(request, s, "server", name, {"server": name})

    async def switch_expert(self, request: Request, s: Session) -> Response:
        category, model = request.path_params["category"], request.path_params["model"]
        models = [ref.model for ref in (await self.config()).experts.get(category, [])]
        if model not in models:
            return await self.fleet(request, s, status=404, error=f"No expert model '{model}' in '{category}'.")
        enable = str((await request.form()).get("enabled")) == "true"
        off = await self.switches.disabled("expert")
        if not enable and all(expert_member(category, m) in off for m in models if m != model):
            return await self.fleet(request, s, status=409,
                                    error=f"'{model}' is the last enabled model of '{category}': not disabled.")
        return await self._switch(request, s, "expert", expert_member(category, model),
                                  {"category": category, "model": model})

    async def switch_tool(self, request: Request, s: Session) -> Response:
        name = request.path_params["name"]
        if name not in await read_catalog(self.redis, self.namespace):
            return await self.fleet(request, s, status=404, error=f"No precision tool '{name}' is served.")
        return await self._switch(request, s, "tool", name, {"tool": name})

    async def _switch(self, request: Request, s: Session, kind: Kind, member: str, details: dict[str, str]) -> Response:
        enable = str((await request.form()).get("enabled")) == "true"
        if await self.switches.set(kind, member, enabled=enable):
            action = f"{kind}.{'enabled' if enable else 'disabled'}"
            event = change_event(f"key:{s.key_id}", action, f"{kind}:{member}", "__fleet__", details)
            await self.bus.publish(event, self.bus.topics.audit)
        return RedirectResponse("/console/fleet", status_code=303)

    async def _scores(self) -> list[dict[str, Any]]:
        """The global scores (`expert:score:<ns>:<category>:<model>`), then each tenant's own
        (`expert:tscore:<ns>:<tenant>:<category>:<model>`); tenant ids and categories hold no colon."""
        rows = []
        for prefix, scoped in ((f"expert:score:{self.namespace}:", False), (f"expert:tscore:{self.namespace}:", True)):
            names = []
            async for name in self.redis.scan_iter(match=f"{prefix}*", count=200):
                names.append(name)
                if len(names) >= MAX_SCORES:
                    break
            for name in sorted(names):
                rest = name[len(prefix):]
                tenant, _, rest = rest.partition(":") if scoped else ("all tenants (approved ratings)", "", rest)
                category, _, model = rest.partition(":")
                rows.append({"scope": tenant, "category": category, "model": model,
                             **score(await self.redis.hgetall(name))})
        return rows


async def _timed_probe(server: InferenceServer, http: httpx.AsyncClient) -> dict[str, Any]:
    started = time.perf_counter()
    view = await probe(server, http)
    return {"healthy": view.healthy, "models": sorted(view.models), "ms": round((time.perf_counter() - started) * 1000)}
