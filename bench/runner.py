"""One benchmark run: start what is measured, drive the load, read Kafka, write the results."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop

from bench import analyze, kafka_probe, kafka_trace, loadgen, machine, measure, procs, profile, settle, stages, streams
from bench.config import BenchConfig
from bench.fleet_warm import Metrics, Plan
from bench.fleet_warm import warm as warm_fleet
from bench.infra import INFRA, connect, kafka_admin_env, pid_path
from bench.loadgen import Cell, Target
from bench.neo4j_warm import warm as warm_neo4j
from bench.record import record_env
from bench.scenarios import EXPERT_MODEL, FLEET_MODEL, PATHS, SCRIPT
from gateway.settings import GatewaySettings

log = logging.getLogger("bench")
REQUEST_TIMEOUT_S = 30
IDLE_SECONDS = 5  # how long the fleet's idle CPU is measured (subtracted from the per-request CPU)


def fleet_env(eps: dict[str, str], namespace: str, llm_url: str, extra: dict[str, str]) -> dict[str, str]:
    return {
        "MOE_TOPIC_NAMESPACE": namespace, "MOE_KAFKA_BOOTSTRAP": eps["kafka"], "MOE_REDIS_URL": eps["redis"],
        "MOE_POSTGRES_DSN": eps["postgres"], "MOE_CHROMA_URL": eps["chroma"], "MOE_NEO4J_URI": eps["neo4j"],
        "MOE_NEO4J_USER": eps.get("neo4j-user", ""), "MOE_NEO4J_PASSWORD": eps.get("neo4j-password", ""),
        "MOE_REQUEST_TIMEOUT_S": str(REQUEST_TIMEOUT_S),
        "INFERENCE_SERVERS": json.dumps([{"name": "bench", "url": llm_url, "models": list(SCRIPT["replies"]),
                                          "max_retries": 0, "timeout_s": REQUEST_TIMEOUT_S}]),
        "MODEL_ASSIGNMENTS": json.dumps({"planner": ["planner-model"], "judge": ["judge-model"],
                                         "default": [EXPERT_MODEL]}),
        "EXPERT_TEMPLATES": json.dumps({"general": [EXPERT_MODEL]}),
        # the scripted answers are one short line; the cache's minimum (150 characters, the original's) would
        # store none of them and leave the cache path without a hit
        "MOE_CACHE_MIN_ANSWER_CHARS": "0",
        # the bench's own namespace on the authenticated broker: its fleet connects as the broker's admin (which
        # makes the namespace's topics), not as the production principals
        **kafka_admin_env(),
        **extra,
    }


async def _key(dsn: str, tenant: str, revoke: str | None = None) -> tuple[str, str]:
    from moe_core.access.keystore import KeyStore

    store = await KeyStore.connect(dsn)
    try:
        if revoke:
            await store.revoke(revoke)
            return revoke, ""
        key, token = await store.create(f"bench-{tenant}", "user", [tenant])
        return key.id, token
    finally:
        await store.close()


async def _delete_topics(bootstrap: str, namespace: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    from moe_core.runtime.kafka_clients import client_kwargs

    admin = AIOKafkaAdminClient(**client_kwargs(bootstrap=bootstrap), client_id="bench-cleanup")
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(f"{namespace}.")]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()



def memory_settle_s(fleet_env: dict[str, str]) -> float:
    """How long the fleet idles after its last cell before its memory is read: one trim of the gateway's and a margin
    (its MOE_MALLOC_TRIM_INTERVAL_S as the run sets it, else its default)."""
    interval = fleet_env.get("MOE_MALLOC_TRIM_INTERVAL_S")
    trim_s = float(interval) if interval else GatewaySettings.model_fields["malloc_trim_interval_s"].default
    return trim_s + 2.0 if trim_s > 0 else 0.0

class Benchmark:
    def __init__(self, cfg: BenchConfig, stem: str) -> None:
        self.cfg = cfg
        self.stem = stem
        self.namespace = f"bench{uuid.uuid4().hex[:8]}"
        self.eps = connect()  # the infrastructure up, this process's Kafka clients the broker's admin
        self.started: list[procs.Proc] = []
        self.fleet: Any = None
        self.available: dict[str, str | None] = {}
        self.deadline = time.monotonic() + cfg.budget_s  # no new cell starts after this
        self.skipped: list[str] = []
        self.idle: dict[str, float] = {}
        self.neo4j_warm: dict[str, Any] | None = None
        self.fleet_warm: dict[str, Any] | None = None
        self.warmed: tuple[dict[str, float], dict[str, float]] | None = None  # RSS, RssAnon once the fleet is warm
        self.first_burst: dict[str, Any] | None = None  # the memory the warm-up's burst of streams left (_warm_burst)

    def run(self) -> dict[str, Any]:
        cfg, started_at, t0 = self.cfg, datetime.now(UTC), time.perf_counter()
        load_before = machine.load_average()
        key_id = None
        records = ExitStack()  # the run's audit schema, dropped once the fleet has stopped
        try:
            llm_url, llm = procs.start_llm_server(SCRIPT)
            self.started.append(llm)
            litellm = self._launch_litellm(llm_url)
            log.info("starting the fleet (namespace %s)", self.namespace)
            extra: tuple[str, ...] = ("graph-ingest", "gap-healer") if cfg.learning else ()
            extra += ("codex-lineage",) if cfg.record else ()
            env = fleet_env(self.eps, self.namespace, llm_url, cfg.fleet_env)
            if cfg.record:  # the record as production runs it, in an audit schema of this run's own
                env = {**records.enter_context(record_env(self.eps, self.namespace)), **env}
            self.fleet = procs.start_fleet(env, cfg.gateway_workers, extra)
            key_id, token = asyncio.run(_key(self.eps["postgres"], f"tenant-{self.namespace}"))
            targets = self._targets(llm_url, litellm, token)
            cpu_before, rss_before = self._cpu(), procs.rss_mb(self._roots())
            anon_before = procs.rss_mb(self._roots(), "RssAnon")
            phases = uvloop.run(self._http(targets, llm_url))
            rss_burst, anon_burst = procs.rss_mb(self._roots()), procs.rss_mb(self._roots(), "RssAnon")
            # the last cell's freed memory given back (the gateway trims every MOE_MALLOC_TRIM_INTERVAL_S): what a
            # process holds once a burst is over, not the burst's high-water mark; the reading at once beside it
            time.sleep(memory_settle_s(cfg.fleet_env))
            rss_after, anon_after = procs.rss_mb(self._roots()), procs.rss_mb(self._roots(), "RssAnon")
            # across the run: from the warmed fleet (its first requests' imports, tables and pools are its start, not
            # growth) to the end; from the cold start beside it
            warmed, anon_warmed = self.warmed or (rss_before, anon_before)
            memory_growth = procs.growth(warmed, rss_after, anon_warmed, anon_after)
            growth_at_once = procs.growth(warmed, rss_burst, anon_warmed, anon_burst)
            growth_from_start = procs.growth(rss_before, rss_after, anon_before, anon_after)
            cpu = self._cpu_share(cpu_before, self._cpu())
            memory = procs.peak_memory(self._roots())
            memory["load generator"] = {"peak_rss_mb": round(_self_hwm_kb() / 1024, 1), "processes": 1}
            log.info("Kafka probe and reading the request traces ...")
            probe = kafka_probe.run(self.eps["kafka"], f"{self.namespace}.bench-probe.v1", cfg.probe_messages)
            rids = {r.response_id for c in phases["cells"] for r in c.records if r.response_id}
            traces = kafka_trace.read(self.eps["kafka"], self.namespace, rids)
        finally:
            self._stop()
            records.close()
            if key_id:
                asyncio.run(_key(self.eps["postgres"], "", revoke=key_id))
            asyncio.run(_delete_topics(self.eps["kafka"], self.namespace))
        cells: list[Cell] = phases["cells"]
        analyze.verify_cells(cells, traces)
        cell_stats = [c.stats() | {"server": c.server} for c in cells]
        groups = analyze.group(cell_stats)
        summary = analyze.summarize(groups)
        added = analyze.added_latency(groups)
        sustained = phases["sustained"].stats() if phases["sustained"] else None
        return {
            "schema": "moe-bench/1", "profile": cfg.profile, "command": cfg.command,
            "started_at": started_at.isoformat(), "duration_s": round(time.perf_counter() - t0, 1),
            "machine": machine.describe(procs.litellm_version()) | {
                "load_average_before": load_before, "load_average_after": machine.load_average(), "cpu_share": cpu},
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(cfg).items()},
            "namespace": self.namespace,
            "paths": {name: {"description": PATHS[name].description, "available": self.available.get(name) is None,
                             "reason": self.available.get(name)} for name in PATHS},
            "skipped_cells": self.skipped, "idle_cores": self.idle, "neo4j_warm": self.neo4j_warm,
            "fleet_warm": self.fleet_warm,
            "summary": summary, "added_latency_ms": added, "litellm_ratio": analyze.litellm_ratios(added),
            "sustained": sustained, "tokens": phases["tokens"], "memory": memory, "kafka_probe": probe,
            "cpu_profile": phases["profile"],
            "streams": phases.get("streams", []), "streams_model_s": cfg.streams_model_s,
            "hops": analyze.hop_table(cells, traces), "hop_definitions": kafka_trace.HOPS,
            "stages": analyze.stage_table(cell_stats),
            "kafka_messages_per_request": analyze.messages_per_request(cells, traces),
            "memory_growth": memory_growth, "memory_growth_from_cold_start": growth_from_start,
            "memory_growth_at_once": growth_at_once, "memory_first_burst": self.first_burst,
            "targets": analyze.targets(summary, added, phases["tokens"], sustained, self.available, {
                k: v for k, v in memory_growth.items() if self.fleet and k in self.fleet.services},
                phases.get("streams", [])),
            "cells": cell_stats,
        }

    def _launch_litellm(self, llm_url: str) -> tuple[str, procs.Proc] | None:
        reason = procs.litellm_available() if self.cfg.litellm else "skipped (--no-litellm)"
        self.available["litellm"] = reason
        if reason:
            log.warning("LiteLLM: %s", reason)
            return None
        base, proc = procs.launch_litellm(llm_url, self.cfg.litellm_workers)
        self.started.append(proc)
        return base, proc

    def _targets(self, llm_url: str, litellm: tuple[str, procs.Proc] | None, token: str) -> dict[str, Target]:
        targets = {"direct": Target("direct", f"{llm_url}/v1", EXPERT_MODEL, "none", PATHS["direct"].check,
                                    PATHS["direct"].question)}
        if litellm is not None:
            try:
                url = procs.wait_litellm(*litellm)
                targets["litellm"] = Target("litellm", url, EXPERT_MODEL, procs.LITELLM_KEY,
                                            PATHS["litellm"].check, PATHS["litellm"].question)
            except RuntimeError as exc:
                self.available["litellm"] = f"LiteLLM did not start: {str(exc)[:300]}"
                log.warning("%s", self.available["litellm"])
        gateway = f"{self.fleet['gateway'].url}/v1"
        for name in self.cfg.paths:
            targets[name] = Target(name, gateway, FLEET_MODEL, token, PATHS[name].check, PATHS[name].question)
        return targets

    async def _http(self, targets: dict[str, Target], llm_url: str) -> dict[str, Any]:
        services = list(self.fleet.services) if self.fleet else []
        settler = settle.settler(self.eps["kafka"], services, self.namespace)
        if settler is None:
            return await self._phases(targets, llm_url, None)
        async with settler:
            log.info("cells close when these have caught up: %s", ", ".join(g.group for g in settler.groups))
            return await self._phases(targets, llm_url, settler.wait)

    async def _phases(self, targets: dict[str, Target], llm_url: str, settled: measure.Settle | None) -> dict[str, Any]:
        cfg = self.cfg
        async with loadgen.session(max(cfg.concurrency) + 8) as http:
            for name in cfg.paths:
                reason = await measure.availability(http, targets[name], self._verify)
                self.available[name] = reason
                log.info("path %s: %s", name, "available" if reason is None else f"NOT available: {reason}")
                if reason:
                    del targets[name]
            if "full" in targets and cfg.neo4j_warm:  # a warm Neo4j, as in production (bench.neo4j_warm)
                self.neo4j_warm = await warm_neo4j(self.eps, f"tenant-{self.namespace}", cfg.neo4j_warm)
                log.info("Neo4j warmed: %s", self.neo4j_warm)
            urls = {name: svc.url for name, svc in self.fleet.services.items()} if self.fleet else {}
            if cfg.fleet_warm:
                await self._warm_fleet(http, targets, lambda: stages.scrape(http, urls), settled)
            if cfg.fleet_warm and cfg.streams and "trivial" in targets:
                await self._warm_burst(targets["trivial"], llm_url, max(cfg.streams))
            self.warmed = procs.rss_mb(self._roots()), procs.rss_mb(self._roots(), "RssAnon")
            self.idle = await measure.idle_rates(self._cpu_groups, IDLE_SECONDS, settled)
            log.info("idle: fleet %.2f cores, kafka %.2f cores", sum(
                v for k, v in self.idle.items() if self.fleet and k in self.fleet.services), self.idle.get("kafka", 0))
            cells = await measure.cells(http, cfg, targets, llm_url, self._cpu_groups, self.idle, self.deadline,
                                        self.skipped, lambda: stages.scrape(http, urls), settled)
            if self.skipped:
                log.warning("time budget (%.0f s) used up: %d cells skipped", cfg.budget_s, len(self.skipped))
            sustained = None
            if cfg.sustain_seconds > 0 and "full" in targets and time.monotonic() < self.deadline:
                sustained = await measure.sustained(http, cfg, targets["full"])
                cells.append(sustained)
            tokens = {name: await measure.tokens(http, targets[name], targets["direct"], cfg.token_samples, llm_url,
                                                 settled) | {"with_learning": cfg.learning}
                      for name in cfg.paths if name in targets and cfg.token_samples > 0}
            profiled = await self._profile(http, targets.get(cfg.profile_path))
        held = []
        if cfg.streams and time.monotonic() < self.deadline:
            held = await streams.run(targets, llm_url, cfg.streams, cfg.streams_model_s,
                                     REQUEST_TIMEOUT_S + cfg.streams_model_s + 30, self._cpu_groups, self.idle, log)
        return {"cells": cells, "sustained": sustained, "tokens": tokens, "profile": profiled, "streams": held}

    async def _warm_burst(self, target: Target, llm_url: str, n: int) -> None:
        """The streams cells' largest burst once, before the warmed fleet's memory is read: holding N streams at once
        leaves the gateway ~17-20 MB larger for good (at 256: Python's allocator keeps the arenas the open streams'
        objects filled, a few survivors in each; a second adds 0.2-2.2 MB, bench.gateway_memory), a high-water mark
        of the run's largest burst (`memory_first_burst`), not growth across the run."""
        started, before = time.monotonic(), (procs.rss_mb(self._roots()), procs.rss_mb(self._roots(), "RssAnon"))
        held = await streams.burst(target, llm_url, n, self.cfg.streams_model_s,
                                   REQUEST_TIMEOUT_S + self.cfg.streams_model_s + 30)
        await asyncio.sleep(memory_settle_s(self.cfg.fleet_env))  # its freed memory trimmed, as before "after"
        self.first_burst = procs.growth(before[0], procs.rss_mb(self._roots()), before[1],
                                        procs.rss_mb(self._roots(), "RssAnon"))
        self.deadline += time.monotonic() - started  # warm-up, as the fleet's: the time budget counts from its end
        log.info("warm-up burst: %d streams, %d held; the gateway %+.1f MB", n, sum(s.held() for s in held),
                 (self.first_burst.get("gateway") or {}).get("growth_mb") or 0.0)

    async def _warm_fleet(self, http: Any, targets: dict[str, Target], metrics: Metrics,
                          settled: measure.Settle | None) -> None:
        """The whole fleet warmed (bench.fleet_warm); the time budget counts from its end."""
        cfg = self.cfg
        paths = [targets[name] for name in cfg.paths if name in targets]
        if not paths:
            return
        plan = Plan(cfg.fleet_warm, cfg.fleet_warm_requests, cfg.fleet_warm_concurrency)
        services = list(self.fleet.services) if self.fleet else []
        self.fleet_warm = await warm_fleet(http, paths, plan, services, self._cpu_groups, metrics, settled)
        self.deadline += self.fleet_warm["seconds"]

    async def _profile(self, http: Any, target: Target | None) -> dict[str, Any] | None:
        """py-spy on every service while the profiled path (default full) runs at concurrency 8 (not counted)."""
        seconds = self.cfg.profile_seconds
        if seconds <= 0:
            return None
        reason = profile.available() or (None if target else f"the {self.cfg.profile_path} path is not available")
        if reason or target is None:
            return {"error": reason}
        pids = {name: svc.proc.pid for name, svc in self.fleet.services.items() if svc.proc}
        running = profile.start(pids, seconds, self.cfg.out_dir, self.stem)
        cell = await loadgen.run_cell(http, target, concurrency=min(8, max(self.cfg.concurrency)), stream=False,
                                      run=0, max_requests=10**9, max_seconds=seconds + 1)
        result = await asyncio.to_thread(profile.finish, running)
        return {"load": cell.stats(), "services": result}

    async def _verify(self, path: str, rids: list[str]) -> str | None:
        check = PATHS[path].kafka_check
        if check is None or not rids:
            return None
        traces = await kafka_trace.read_traces(self.eps["kafka"], self.namespace, set(rids))
        empty: dict[str, Any] = {"tasks": {}, "results": {}, "messages": {}}
        reasons = [r for r in (check(traces.get(rid, empty)) for rid in rids) if r]
        return f"the Kafka messages show another path: {reasons[0]}" if reasons else None

    def _roots(self) -> dict[str, int]:
        roots = {p.name: p.pid for p in self.started}
        if self.fleet is not None:
            roots |= {name: svc.proc.pid for name, svc in self.fleet.services.items() if svc.proc}
        return roots

    def _cpu(self) -> dict[str, float]:
        children = procs.children_map()
        fleet = set(self.fleet.services) if self.fleet else set()
        out = {"fleet": 0.0, "baselines": 0.0}
        for name, pid in self._roots().items():
            out["fleet" if name in fleet else "baselines"] += procs.cpu_seconds(procs.tree(pid, children))
        out["load generator"] = sum(os.times()[:2])
        infra = [found for n in INFRA if (found := _pid_file(n))]
        out["infrastructure"] = procs.cpu_seconds([p for root in infra for p in procs.tree(root, children)])
        out["busy"], out["total"] = procs.system_cpu_seconds()
        return out

    def _cpu_groups(self) -> dict[str, float]:
        """CPU seconds so far per process group: each service, the baselines, each infrastructure component."""
        children = procs.children_map()
        out = {name: procs.cpu_seconds(procs.tree(pid, children)) for name, pid in self._roots().items()}
        for name in INFRA:
            root = _pid_file(name)
            out[name] = procs.cpu_seconds(procs.tree(root, children)) if root else 0.0
        out["load generator"] = sum(os.times()[:2])
        return out

    @staticmethod
    def _cpu_share(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
        delta = {k: after[k] - before[k] for k in after}
        capacity = delta.pop("total")
        busy = delta.pop("busy")
        delta["other processes"] = max(busy - sum(delta.values()), 0.0)
        share = {k: round(v / capacity, 3) if capacity else None for k, v in delta.items()}
        return {"window_s": round(capacity / (os.cpu_count() or 1), 1), "share_of_machine": share,
                "idle": round(1 - busy / capacity, 3) if capacity else None}

    def _stop(self) -> None:
        if self.fleet is not None:
            self.fleet.stop()
        for proc in reversed(self.started):
            proc.stop()


def _pid_file(name: str) -> int | None:
    try:
        return int(pid_path(name).read_text().strip())  # fleetlib's (MOE_DATA_DIR honoured)
    except (OSError, ValueError):
        return None


def _self_hwm_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0
