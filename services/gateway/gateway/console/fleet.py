"""Console page for inference servers and experts.

Servers: what the fleet's shared state in Redis says (moe_core.inference.fleet: healthy, loaded models,
calls in flight) plus a live probe from this page (the same probe the heartbeat runs) and its round trip.
Experts: the feedback scores the expert-worker keeps in Redis (`expert:score:<ns>:<category>:<model>`), shown
with the expert-worker's formula, score = (positive + neutral / 2 + 1) / (ratings + 2), from the counts as
last written (the decay towards the prior is applied when the next rating arrives).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import httpx
from fastapi import Request
from fastapi.responses import Response
from redis.asyncio import Redis

from gateway.console.core import ConsoleCore
from gateway.console.sessions import Session
from moe_core.inference.config import InferenceConfig, InferenceServer
from moe_core.inference.fleet import InferenceFleet, probe
from moe_core.settings import FleetSettings

MAX_SCORES = 500


def score(counts: Mapping[Any, Any]) -> dict[str, Any]:
    pos, neg, neu = (float(counts.get(k) or 0) for k in ("pos", "neg", "neu"))
    return {"positive": round(pos, 2), "negative": round(neg, 2), "neutral": round(neu, 2),
            "ratings": int(counts.get("n") or 0), "score": round((pos + neu / 2 + 1) / (pos + neg + neu + 2), 3)}


class FleetPage:
    def __init__(self, core: ConsoleCore, settings: FleetSettings, redis: Redis) -> None:
        self.core = core
        self.settings = settings
        self.redis = redis
        self.namespace = settings.topic_namespace
        core.page("/fleet", self.fleet)

    async def fleet(self, request: Request, s: Session) -> Response:
        config = InferenceConfig.from_settings(self.settings)
        views = await InferenceFleet(self.redis, self.namespace).views(config.servers)
        async with httpx.AsyncClient() as http:
            probes = await asyncio.gather(*(_timed_probe(server, http) for server in config.servers))
        servers = [{"name": srv.name, "url": srv.url, "api": srv.api, "shared": views[srv.name], "probe": found}
                   for srv, found in zip(config.servers, probes, strict=True)]
        experts = {category: [str(ref) for ref in refs] for category, refs in config.experts.items()}
        return self.core.render(request, "fleet.html", s, servers=servers, experts=experts,
                                scores=await self._scores())

    async def _scores(self) -> list[dict[str, Any]]:
        prefix = f"expert:score:{self.namespace}:"
        names = []
        async for name in self.redis.scan_iter(match=f"{prefix}*", count=200):
            names.append(name)
            if len(names) >= MAX_SCORES:
                break
        rows = []
        for name in sorted(names):
            category, _, model = name[len(prefix):].partition(":")
            rows.append({"category": category, "model": model, **score(await self.redis.hgetall(name))})
        return rows


async def _timed_probe(server: InferenceServer, http: httpx.AsyncClient) -> dict[str, Any]:
    started = time.perf_counter()
    view = await probe(server, http)
    return {"healthy": view.healthy, "models": sorted(view.models), "ms": round((time.perf_counter() - started) * 1000)}
