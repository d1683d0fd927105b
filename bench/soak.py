"""`python -m bench.soak` (`make soak`; `make bench` runs it after the benchmark): a bounded soak.

One fleet as operators run it (the benchmark's product profile: real processes with the record, codex-lineage in
an audit schema of the soak's own, and learning, graph-ingest and gap-healer; the zero-latency inference server, a
fresh topic namespace and key) gets `--seconds` of mixed traffic from closed-loop clients: the full pipeline and
the trivial path, streaming and not, cache hits, and streams the client abandons after their first event
(Cancel). Every process tree's resident memory (each service, the inference server, Kafka, Redis, Postgres,
Chroma, Neo4j) is sampled throughout; bench.soak_report decides whether it is flat after warm-up and writes
bench/results/latest-soak.{json,md,png} and the soak section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import uvloop

from bench import __main__ as bench_main
from bench import analyze, loadgen, procs, soak_report
from bench.config import REPO
from bench.infra import INFRA, connect
from bench.loadgen import Target
from bench.record import record_env
from bench.runner import _delete_topics, _key, _pid_file, fleet_env
from bench.scenarios import FLEET_MODEL, PATHS, SCRIPT

log = logging.getLogger("bench.soak")
# Every full-pipeline question of the soak is new, so the planner's bounded caches (its in-process cache index,
# MOE_CACHE_INDEX_TENANT_MAX_MB, default 64 MB; its recent vectors, MOE_EMBEDDING_CACHE_SIZE, default 4,096
# texts) would fill through the whole run and read as growth. Small bounds make them reach their bound (and
# evict) during the warm-up, so what the second half shows is growth that no bound stops: a leak.
SOAK_ENV = {"MOE_CACHE_INDEX_TENANT_MAX_MB": "1", "MOE_EMBEDDING_CACHE_SIZE": "256"}
PRODUCT = ("graph-ingest", "gap-healer", "codex-lineage")  # learning and the record, as make bench's first fleet
RESULTS = REPO / "bench" / "results"
DOC = REPO / "docs" / "performance.md"
# One client's rotation: (path, streaming). "cancel": a full-pipeline stream dropped after its first event.
MIX = [("full", False), ("cache", True), ("trivial", False), ("full", True), ("cancel", True), ("cache", False),
       ("trivial", True)]


@dataclass
class SoakConfig:
    seconds: float = 300
    concurrency: int = 4
    sample_s: float = 5.0
    gateway_workers: int = 1
    cancel_wait_s: float = 5.0  # after the traffic: the resume grace (3 s) of the last abandoned streams
    docs: bool = True
    command: str = "make soak"


async def _abandoned(http: aiohttp.ClientSession, target: Target) -> str | None:
    """A stream the client drops after its first event (the gateway publishes Cancel); None when it went so."""
    body = orjson.dumps(target.body(True))
    headers = {"Authorization": f"Bearer {target.api_key}", "Content-Type": "application/json"}
    try:
        async with http.post(f"{target.url}/chat/completions", data=body, headers=headers) as resp:
            if resp.status != 200:
                return f"HTTP {resp.status}"
            async for line in resp.content:
                if line.startswith(b"data: "):
                    break
            resp.close()  # drop the connection mid-stream
    except (TimeoutError, aiohttp.ClientError) as exc:
        return f"{type(exc).__name__}: {exc}"[:120]
    return None


async def _traffic(http: aiohttp.ClientSession, targets: dict[str, Target], cfg: SoakConfig, end: float,
                   requests: Counter[str], errors: Counter[str]) -> None:
    async def client(i: int) -> None:
        n = i
        while time.monotonic() < end:
            kind, stream = MIX[n % len(MIX)]
            n += 1
            label = kind if kind == "cancel" else f"{kind}{' stream' if stream else ''}"
            if kind == "cancel":
                error = await _abandoned(http, targets["full"])
            else:
                error = (await loadgen.one(http, targets[kind], stream)).error
            requests[label] += 1
            if error:
                errors[f"{label}: {error[:100]}"] += 1

    await asyncio.gather(*(client(i) for i in range(cfg.concurrency)))


async def _sample(roots: dict[str, int], cfg: SoakConfig, started: float, end: float,
                  samples: list[dict[str, Any]]) -> None:
    while True:
        now = time.monotonic()
        samples.append({"t": round(now - started, 1), "rss_mb": await asyncio.to_thread(procs.rss_mb, roots)})
        if now >= end:
            return
        await asyncio.sleep(min(cfg.sample_s, max(0.0, end - now)))


async def _soak(cfg: SoakConfig, targets: dict[str, Target], roots: dict[str, int]) -> dict[str, Any]:
    requests: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    samples: list[dict[str, Any]] = []
    async with loadgen.session(cfg.concurrency + 4) as http:
        primed = await loadgen.one(http, targets["cache"], False)  # the cache path's question, answered once
        if primed.error and "cache" not in primed.error:
            log.warning("priming the cache: %s", primed.error)
        started = time.monotonic()
        end = started + cfg.seconds
        await asyncio.gather(_traffic(http, targets, cfg, end, requests, errors),
                             _sample(roots, cfg, started, end, samples))
        await asyncio.sleep(cfg.cancel_wait_s)  # the last abandoned streams' Cancel (after the resume grace)
        cancelled = await _cancelled(http, targets["full"].url.removesuffix("/v1"))
    return {"samples": samples, "traffic": {"requests": dict(requests), "total": sum(requests.values()),
                                            "errors": dict(errors.most_common(10)), "cancel_published": cancelled}}


async def _cancelled(http: aiohttp.ClientSession, gateway: str) -> int | None:
    """How many Cancel messages the gateway published for clients that went away (its own counter)."""
    try:
        async with http.get(f"{gateway}/metrics") as resp:
            text = await resp.text()
    except (TimeoutError, aiohttp.ClientError):
        return None
    found = re.search(r'^moe_gateway_cancelled_total\{reason="client_disconnected"\} ([0-9.e+]+)$', text, re.M)
    return int(float(found.group(1))) if found else 0


@dataclass
class ProductFleet:
    fleet: Any  # tests.support.fleet.Fleet
    token: str  # a fresh tenant's API key
    llm_url: str
    llm: procs.Proc  # the inference server
    namespace: str

    @property
    def gateway(self) -> str:
        return f"{self.fleet['gateway'].url}/v1"

    def targets(self) -> dict[str, Target]:
        return {name: Target(name, self.gateway, FLEET_MODEL, self.token, PATHS[name].check, PATHS[name].question)
                for name in ("full", "trivial", "cache")}


@contextmanager
def product_fleet(prefix: str, gateway_workers: int = 1,
                  gateway_env: dict[str, str] | None = None) -> Iterator[ProductFleet]:
    """One fleet as operators run it (the record in an audit schema of its own, learning), the zero-latency
    inference server, a fresh namespace and key; afterwards everything stopped, the schema dropped, the key revoked
    and the namespace's topics deleted. The soak's and the memory tools' (bench.gateway_memory, bench.hit_record)."""
    eps = connect()  # the infrastructure up, this process's Kafka clients the broker's admin
    namespace = f"{prefix}{uuid.uuid4().hex[:8]}"
    llm_url, llm = procs.start_llm_server(SCRIPT)
    fleet, key_id, records = None, None, ExitStack()  # the audit schema, dropped once the fleet has stopped
    try:
        log.info("starting the fleet with the record and learning (namespace %s)", namespace)
        env = {**records.enter_context(record_env(eps, namespace)), **fleet_env(eps, namespace, llm_url, SOAK_ENV)}
        fleet = procs.start_fleet(env, gateway_workers, PRODUCT, gateway_env=gateway_env)
        key_id, token = asyncio.run(_key(eps["postgres"], f"tenant-{namespace}"))
        yield ProductFleet(fleet, token, llm_url, llm, namespace)
    finally:
        if fleet is not None:
            fleet.stop()
        records.close()
        llm.stop()
        if key_id:
            asyncio.run(_key(eps["postgres"], "", revoke=key_id))
        asyncio.run(_delete_topics(eps["kafka"], namespace))


def run(cfg: SoakConfig) -> dict[str, Any]:
    started_at, t0 = datetime.now(UTC), time.perf_counter()
    with product_fleet("soak", cfg.gateway_workers) as product:
        fleet = product.fleet
        roots = {name: svc.proc.pid for name, svc in fleet.services.items() if svc.proc}
        roots["inference server"] = product.llm.pid
        roots |= {name: pid for name in INFRA if (pid := _pid_file(name))}
        log.info("soak: %.0f s, %d clients, RSS every %.0f s", cfg.seconds, cfg.concurrency, cfg.sample_s)
        data = uvloop.run(_soak(cfg, product.targets(), roots))
        namespace, services = product.namespace, sorted(fleet.services)
    verdicts = soak_report.verdicts(data["samples"])
    return {"schema": "moe-soak/1", "command": cfg.command, "started_at": started_at.isoformat(),
            "duration_s": round(time.perf_counter() - t0, 1), "namespace": namespace,
            "config": {"seconds": cfg.seconds, "concurrency": cfg.concurrency, "sample_s": cfg.sample_s,
                       "gateway_workers": cfg.gateway_workers},
            "fleet": services, "verdicts": verdicts,
            "fleet_flat": all(verdicts.get(s, {}).get("flat") for s in services),
            **data}


def render() -> int:
    """Rewrite latest-soak.md/.png and the soak section of docs/performance.md from latest-soak.json."""
    result = json.loads((RESULTS / "latest-soak.json").read_text())
    _write(result, ["latest-soak"], docs=True)
    return 0


def _write(result: dict[str, Any], names: list[str], docs: bool) -> None:
    section = soak_report.markdown(result)
    for name in names:
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
        (RESULTS / f"{name}.md").write_text(section)
        soak_report.draw(result, RESULTS / f"{name}.png")
    if docs:
        DOC.write_text(soak_report.replace_section(DOC.read_text() if DOC.exists() else "# Performance\n", section))


def _into_latest(result: dict[str, Any]) -> None:
    """The soak's verdict into the benchmark's latest.json (make bench runs the soak right after it), whose
    targets table then shows issue 29's "memory flat in the soak"; the page is rendered again."""
    latest = RESULTS / "latest.json"
    if not latest.exists():
        return
    bench = json.loads(latest.read_text())
    bench["soak"] = analyze.soak_summary(result)
    latest.write_text(json.dumps(bench, indent=1) + "\n")
    bench_main.render(latest)


def main(argv: list[str] | None = None) -> int:
    if argv and argv[0] == "render":
        return render()
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=SoakConfig.seconds, help="length of the soak")
    parser.add_argument("--concurrency", type=int, default=SoakConfig.concurrency, help="closed-loop clients")
    parser.add_argument("--sample", type=float, default=SoakConfig.sample_s, help="seconds between RSS samples")
    parser.add_argument("--no-docs", action="store_true", help="leave docs/performance.md and latest-soak.* alone")
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s bench %(message)s", datefmt="%H:%M:%S")
    for noisy in ("httpx", "aiokafka", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    cfg = SoakConfig(seconds=args.seconds, concurrency=args.concurrency, sample_s=args.sample, docs=not args.no_docs,
                     command=f"make soak SOAK={args.seconds:g}")
    result = run(cfg)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    _write(result, [f"{stamp}-soak"] + (["latest-soak"] if cfg.docs else []), cfg.docs)
    if cfg.docs:
        _into_latest(result)
    growing = [n for n, v in result["verdicts"].items() if v.get("flat") is False]
    log.info("soak: fleet memory %s; growing: %s", "flat" if result["fleet_flat"] else "NOT flat",
             ", ".join(growing) or "none")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
