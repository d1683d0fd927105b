"""GET /v1/admin/providers: every configured inference server, as the fleet sees it now.

- health: a live probe from this control plane (the heartbeat's probe: /v1/models or Ollama's /api/ps and
  /api/tags) with its round trip, and the fleet's shared heartbeat in Redis (moe_core.llm.inference.fleet);
- loaded models: what the probe found loaded (else what the heartbeat last recorded);
- breaker: `open` while the fleet's down mark is set after a failed call (skipped first by every stage until
  it expires or a call succeeds; its reason and remaining time), `disabled` when an operator switched the
  server off, else `closed`;
- latency percentiles (p50, p95, p99 of moe_inference_seconds, every stage's calls, over MOE_OPS_LATENCY_WINDOW)
  from Prometheus at MOE_PROMETHEUS_URL; null with the reason when it is not configured or does not answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
from redis.asyncio import Redis

from control_plane.ops.settings import OpsSettings
from moe_core.llm.inference.config import InferenceConfig, InferenceServer
from moe_core.llm.inference.fleet import InferenceFleet, probe
from moe_core.llm.switches import Switches
from moe_core.runtime.settings import FleetSettings

log = logging.getLogger(__name__)
QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}


async def latency_percentiles(ops: OpsSettings, http: httpx.AsyncClient) -> tuple[dict[str, dict[str, float]], str]:
    """{server: {p50, p95, p99} in seconds} and where it came from (or why it is missing). The three quantiles are
    evaluated at one instant (a scrape stored between the queries gave a server p95 and p99 without p50); a
    server is listed with all three or not at all."""
    if not ops.prometheus_url:
        return {}, "unavailable: MOE_PROMETHEUS_URL is not set"
    found: dict[str, dict[str, float]] = {}
    at = f"{time.time():.3f}"
    for name, q in QUANTILES.items():
        expr = (f"histogram_quantile({q}, sum by (le, server) "
                f"(rate(moe_inference_seconds_bucket[{ops.ops_latency_window}])))")
        try:
            response = await http.get(f"{ops.prometheus_url.rstrip('/')}/api/v1/query",
                                      params={"query": expr, "time": at}, timeout=10)
            response.raise_for_status()
            result = response.json()["data"]["result"]
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            log.warning("latency percentiles from Prometheus failed: %s: %s", type(exc).__name__, exc)
            return {}, f"unavailable: Prometheus did not answer ({type(exc).__name__})"
        for series in result:
            value = float(series["value"][1])
            if value == value:  # NaN: no calls in the window
                found.setdefault(series["metric"].get("server", ""), {})[name] = round(value, 4)
    complete = {server: values for server, values in found.items() if len(values) == len(QUANTILES)}
    return complete, f"prometheus (moe_inference_seconds, {ops.ops_latency_window})"


async def _timed_probe(server: InferenceServer, http: httpx.AsyncClient) -> dict[str, Any]:
    started = time.perf_counter()
    view = await probe(server, http)
    return {"healthy": view.healthy, "loaded": sorted(view.loaded), "models": sorted(view.models),
            "probe_ms": round((time.perf_counter() - started) * 1000, 1)}


async def providers(settings: FleetSettings, ops: OpsSettings, redis: Redis) -> dict[str, Any]:
    config = InferenceConfig.from_settings(settings)
    fleet = InferenceFleet(redis, settings.topic_namespace)
    views = await fleet.views(config.servers)
    disabled = await Switches(redis, settings.topic_namespace).disabled("server")
    pipe = redis.pipeline(transaction=False)
    for server in config.servers:
        pipe.get(f"{fleet.prefix}:down:{server.name}")
        pipe.pttl(f"{fleet.prefix}:down:{server.name}")
        pipe.hget(f"{fleet.prefix}:server:{server.name}", "checked_at")
    marks = await pipe.execute()
    async with httpx.AsyncClient() as http:
        probes, (latency, source) = await asyncio.gather(
            asyncio.gather(*(_timed_probe(s, http) for s in config.servers)), latency_percentiles(ops, http))
    data = []
    for i, (server, live) in enumerate(zip(config.servers, probes, strict=True)):
        down, ttl_ms, checked_at = marks[3 * i], marks[3 * i + 1], marks[3 * i + 2]
        view = views[server.name]
        if server.name in disabled:
            breaker: dict[str, Any] = {"state": "disabled", "reason": "switched off by an operator"}
        elif down is not None:
            breaker = {"state": "open", "reason": str(down), "retry_in_s": round(max(int(ttl_ms), 0) / 1000, 3)}
        else:
            breaker = {"state": "closed"}
        data.append({
            "name": server.name, "url": server.url, "api": server.api, "configured_models": server.models,
            "healthy": live["healthy"],
            "probe": live, "heartbeat": {"healthy": view.healthy, "loaded": sorted(view.loaded),
                                         "checked_at": float(checked_at) if checked_at else None},
            "loaded_models": live["loaded"] or sorted(view.loaded), "in_flight": view.inflight,
            "breaker": breaker, "latency_s": latency.get(server.name)})
    return {"object": "list", "data": data, "latency_source": source}
