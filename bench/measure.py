"""The HTTP phases, in one event loop: which paths the fleet takes, the cells (path x concurrency x
stream x run, interleaved so that noise hits every path alike), a sustained cell, the token comparison."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from bench import loadgen, stages
from bench.config import BenchConfig
from bench.loadgen import Cell, Target
from bench.scenarios import CACHE_QUESTION, FLEET_PATHS, PATHS

log = logging.getLogger("bench")
KafkaVerify = Callable[[str, list[str]], Awaitable[str | None]]  # (path, response ids) -> first mismatch
PROBE_REQUESTS = 3
WARMUP_MAX = 16  # unrecorded requests before a cell: min(concurrency, this)
CACHE_PRIMING_ATTEMPTS = 20
Settle = Callable[[], Awaitable[float]]  # waits until the work behind the requests is done (bench.settle)


async def server_stats(http: aiohttp.ClientSession, llm_url: str) -> dict[str, Any]:
    async with http.get(f"{llm_url}/_stats") as resp:
        return dict(await resp.json())


def stats_delta(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    models: dict[str, dict[str, int]] = {}
    for model, row in after["models"].items():
        prev = before["models"].get(model, {})
        diff = {k: v - prev.get(k, 0) for k, v in row.items()}
        if diff["calls"]:
            models[model] = diff
    total = {k: after["total"][k] - before["total"][k] for k in after["total"]}
    return {"models": models, "total": total}


async def availability(http: aiohttp.ClientSession, target: Target, verify: KafkaVerify) -> str | None:
    """None when the fleet takes this path (checked from responses and from Kafka), else why not."""
    if target.name == "cache":
        reason = await _prime_cache(http, target)
        if reason:
            return reason
    records = [await loadgen.one(http, target, stream=False) for _ in range(PROBE_REQUESTS)]
    failures = [r.error for r in records if r.error]
    if failures:
        return f"{len(failures)} of {len(records)} probe requests did not take this path: {failures[0]}"
    return await verify(target.name, [r.response_id for r in records if r.response_id])


async def _prime_cache(http: aiohttp.ClientSession, target: Target) -> str | None:
    """Ask the cache question until it is answered from the cache (the first answer fills the cache)."""
    last = ""
    for attempt in range(CACHE_PRIMING_ATTEMPTS):
        record = await loadgen.one(http, target, stream=False, question=CACHE_QUESTION)
        if record.error is None:
            return None
        last = record.error
        if attempt:
            await asyncio.sleep(0.25)  # the cache may be written after the answer was sent
    return f"no cache hit after {CACHE_PRIMING_ATTEMPTS} identical requests (last: {last})"


CpuSnapshot = Callable[[], dict[str, float]]  # process group -> CPU seconds so far
MetricsSnapshot = Callable[[], Awaitable[stages.Snapshot]]  # the services' /metrics (bench.stages)


def cpu_per_request(after: dict[str, float], before: dict[str, float], requests: int, seconds: float,
                    idle: dict[str, float]) -> dict[str, float]:
    """CPU milliseconds per request, per process group, net of what the group burns when idle (cores x
    seconds); groups that used nothing beyond idle are left out."""
    if not requests:
        return {}
    out = {k: round(max(after[k] - before.get(k, 0.0) - idle.get(k, 0.0) * seconds, 0.0) * 1000 / requests, 2)
           for k in after}
    return {k: v for k, v in out.items() if v > 0}


async def idle_rates(cpu: CpuSnapshot, seconds: float, settle: Settle | None = None) -> dict[str, float]:
    """Cores each process group uses while no request is in flight (consumers polling, heartbeats, ...), once the
    work behind the probes (records, cache stores, ingest events) is done."""
    if settle is not None:
        await settle()
    before, started = cpu(), time.monotonic()
    await asyncio.sleep(seconds)
    after, elapsed = cpu(), time.monotonic() - started
    return {k: round((after[k] - before.get(k, 0.0)) / elapsed, 4) for k in after}


async def cells(http: aiohttp.ClientSession, cfg: BenchConfig, targets: dict[str, Target],
                llm_url: str, cpu: CpuSnapshot, idle: dict[str, float], deadline: float,
                skipped: list[str], metrics: MetricsSnapshot | None = None, settle: Settle | None = None) -> list[Cell]:
    """Every cell, unless the time budget runs out: then the rest is listed in `skipped`. A fleet cell's window
    (CPU and the services' counters) opens and closes with the work behind its requests done (`settle`)."""
    order = [name for name in PATHS if name in targets]  # direct, litellm, full, trivial, cache
    out: list[Cell] = []
    total = cfg.runs * len(cfg.stream) * len(cfg.concurrency) * len(order)
    for run in range(1, cfg.runs + 1):  # breadth first: a budget cut drops later runs, then high concurrency
        for concurrency in cfg.concurrency:
            for stream in cfg.stream:
                for name in order:
                    if time.monotonic() > deadline:
                        skipped.append(f"run {run} {name} c={concurrency} stream={stream}")
                        continue
                    fleet = name in FLEET_PATHS
                    before, cpu_before = await server_stats(http, llm_url), cpu()
                    cell = await loadgen.run_cell(
                        http, targets[name], concurrency=concurrency, stream=stream, run=run,
                        max_requests=cfg.cell_requests, max_seconds=cfg.cell_seconds,
                        min_requests=cfg.cell_min_requests,
                        warmup=min(concurrency, WARMUP_MAX) if cfg.warmup else 0, on_start=cpu,
                        on_start_async=metrics if fleet else None, settle=settle if fleet else None)
                    if settle is not None and fleet:
                        cell.settle_s = await settle()  # the record, usage, cache stores, learning: all done
                    cell.window_s = time.perf_counter() - cell.started
                    cell.cpu_ms = cpu_per_request(cpu(), cell.cpu_start or cpu_before, len(cell.records),
                                                  cell.window_s, idle)
                    if metrics is not None and cell.metrics_start is not None:
                        cell.stages = stages.per_request(await metrics(), cell.metrics_start, len(cell.records))
                    cell.server = stats_delta(await server_stats(http, llm_url), before)
                    out.append(cell)
                    ok = cell.stats()
                    log.info("[%d/%d] run %d %-7s c=%-3d stream=%-5s %5d req %7.1f req/s p50 %s ms errors %d",
                             len(out), total, run, name, concurrency, stream, ok["requests"],
                             ok["throughput_rps"] or 0, ok["latency_ms"]["p50"], ok["errors"])
    return out


async def sustained(http: aiohttp.ClientSession, cfg: BenchConfig, target: Target) -> Cell:
    concurrency = max(cfg.concurrency)
    cell = await loadgen.run_cell(http, target, concurrency=concurrency, stream=False, run=0,
                                  max_requests=10**9, max_seconds=cfg.sustain_seconds, warmup=concurrency)
    stats = cell.stats()
    log.info("sustained %s c=%d: %d requests, %.1f req/s, errors %d", target.name, concurrency,
             stats["requests"], stats["throughput_rps"] or 0, stats["errors"])
    return cell


async def tokens(http: aiohttp.ClientSession, target: Target, direct: Target, samples: int,
                 llm_url: str, settle: Settle | None = None) -> dict[str, Any]:
    """The same questions once through this path and once straight to the model: tokens as counted by
    the inference server, and as reported by the fleet. With learning running, its model calls after each answer
    count on the fleet's side (`settle` waits for them): the product's tokens, more than the answers report."""
    questions = [target.next_question() for _ in range(samples)]
    if target.name == "cache":
        questions = [CACHE_QUESTION] * samples
    if settle is not None:
        await settle()
    before = await server_stats(http, llm_url)
    via = [await loadgen.one(http, target, stream=False, question=q) for q in questions]
    if settle is not None:
        await settle()  # graph-ingest's and gap-healer's calls for these answers, before the direct ones
    middle = await server_stats(http, llm_url)
    for q in questions:
        await loadgen.one(http, direct, stream=False, question=q)
    after = await server_stats(http, llm_url)
    fleet, baseline = stats_delta(middle, before), stats_delta(after, middle)
    fleet_tokens = fleet["total"]["prompt_tokens"] + fleet["total"]["completion_tokens"]
    direct_tokens = baseline["total"]["prompt_tokens"] + baseline["total"]["completion_tokens"]
    reported = sum(r.tokens or 0 for r in via)
    return {
        "samples": samples, "errors": sum(1 for r in via if r.error),
        "fleet_tokens_per_request": round(fleet_tokens / samples, 1),
        "direct_tokens_per_request": round(direct_tokens / samples, 1),
        "ratio": round(fleet_tokens / direct_tokens, 2) if direct_tokens else None,
        "llm_calls_per_request": round(fleet["total"]["calls"] / samples, 2),
        "reported_tokens_per_request": round(reported / samples, 1),
        "reported_matches_server": reported == fleet_tokens,
        "by_model": fleet["models"],
    }
