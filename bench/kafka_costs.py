"""Kafka's CPU per request, by what the broker did (issue 52): the bench's fleet (with the record and learning, the
admin's principal, a namespace of its own, bench.runner) driven cell by cell, and around each cell the broker's own
counters (bench.kafka_requests: requests by type, their time, its threads' CPU by kind) besides its CPU from /proc.
Per request, gross and net of the broker's idle rate (measured first, for IDLE_S, with every consumer caught up).

    python -m bench.kafka_costs --paths full,trivial,cache --concurrency 1,64 --requests 40 [--fleet-env K=V ...]
    MOE_BENCH_KAFKA_PID=<pid> MOE_KAFKA_PORT=<port> python -m bench.kafka_costs ...   # a broker of one's own

The broker measured is fleetctl's (its pid file) unless MOE_BENCH_KAFKA_PID names another, e.g. a second broker
started with other server.properties on other ports (MOE_KAFKA_PORT) so that no other user's load is counted.
Before/after a broker or client setting: run it twice, alternating, and compare `net_cpu_ms` and `requests`.
With MOE_BENCH_KAFKA_LOG (a broker started by bench.kafka_costs_log), each cell and the idle window also count the
broker's request log by API, by client and topic, and the fetches answered empty (`logged`). --no-record and
--no-learning: the fleet without codex-lineage, or without graph-ingest and gap-healer.
Results: bench/results/<stamp>-<broker pid>-kafka-costs.json (not committed) and a table on stdout.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop

from bench import config, infra, loadgen, measure, procs, runner, stages
from bench.kafka_costs_log import count, lines
from bench.kafka_requests import BrokerProbe, Snapshot, usage
from bench.record import record_env
from bench.runner import Benchmark, _delete_topics, _key, _pid_file, fleet_env
from bench.scenarios import SCRIPT

log = logging.getLogger("bench")
IDLE_S = 10.0
REQUEST_LOG = Path(os.environ["MOE_BENCH_KAFKA_LOG"]) if os.environ.get("MOE_BENCH_KAFKA_LOG") else None


class KafkaCosts(Benchmark):
    """The bench's fleet and paths; the cells measured by the broker's counters instead of every process."""

    def __init__(self, cfg: config.BenchConfig, stem: str) -> None:
        if os.environ.get("MOE_BENCH_KAFKA_PID"):  # a broker of one's own: start nothing (bench.infra.connect
            # would start fleetctl's broker on MOE_KAFKA_PORT, the other broker's port, were its pid file missing)
            runner.connect = _running
        super().__init__(cfg, stem)
        pid = os.environ.get("MOE_BENCH_KAFKA_PID") or _pid_file("kafka")
        if not pid:
            raise SystemExit("no Kafka broker pid: fleetctl's pid file is missing and MOE_BENCH_KAFKA_PID is unset")
        self.kafka_pid = int(pid)

    def run(self) -> dict[str, Any]:
        """The fleet as operators run it (the record and learning), the cells, everything stopped and removed."""
        key_id = None
        try:
            llm_url, llm = procs.start_llm_server(SCRIPT)
            self.started.append(llm)
            with record_env(self.eps, self.namespace) as record:
                env = {**record, "MOE_NEO4J_URL": self.eps["neo4j"],  # the fleet starts no Neo4j then
                       **fleet_env(self.eps, self.namespace, llm_url, self.cfg.fleet_env)}
                extra = (("graph-ingest", "gap-healer") if self.cfg.learning else ()) + (
                    ("codex-lineage",) if self.cfg.record else ())
                self.fleet = procs.start_fleet(env, self.cfg.gateway_workers, extra)
                key_id, token = asyncio.run(_key(self.eps["postgres"], f"tenant-{self.namespace}"))
                targets = {k: v for k, v in self._targets(llm_url, None, token).items() if k in self.cfg.paths}
                try:
                    return uvloop.run(self._http(targets, llm_url))
                finally:
                    self._stop()  # before the record's schema goes
        finally:
            self._stop()
            if key_id:
                asyncio.run(_key(self.eps["postgres"], "", revoke=key_id))
            asyncio.run(_delete_topics(self.eps["kafka"], self.namespace))

    async def _phases(self, targets: dict[str, Any], llm_url: str, settled: measure.Settle | None) -> dict[str, Any]:
        cfg = self.cfg

        async def settle() -> None:
            if settled is not None:
                await settled()

        async with loadgen.session(max(cfg.concurrency) + 8) as http:
            for name in list(targets):
                if reason := await measure.availability(http, targets[name], self._verify):
                    raise SystemExit(f"path {name} not available: {reason}")
            urls = {name: svc.url for name, svc in self.fleet.services.items()}
            if cfg.fleet_warm:
                await self._warm_fleet(http, targets, lambda: stages.scrape(http, urls), settled)
            with BrokerProbe(self.kafka_pid) as probe:
                await settle()
                first = probe.snapshot()
                mark = lines(REQUEST_LOG) if REQUEST_LOG else 0
                await asyncio.sleep(IDLE_S)
                idle = usage(probe.snapshot(), first, IDLE_S)
                if REQUEST_LOG:
                    counted = count(REQUEST_LOG, mark, lines(REQUEST_LOG))
                    idle["logged"] = {kind: {k: round(v / IDLE_S, 2) for k, v in c.most_common()}
                                      for kind, c in counted.items()}
                cells = [await self._cell(http, probe, targets[name], c, idle, settle)
                         for c in cfg.concurrency for name in targets]
        return {"broker_pid": self.kafka_pid, "idle_per_second": idle, "cells": cells,
                "fleet_env": cfg.fleet_env, "namespace": self.namespace}

    async def _cell(self, http: Any, probe: BrokerProbe, target: Any, concurrency: int, idle: dict[str, Any],
                    settle: Any) -> dict[str, Any]:
        await loadgen.run_cell(http, target, concurrency=concurrency, stream=False, run=0,
                               max_requests=concurrency * 2, max_seconds=30)  # warm-up, not measured
        await settle()
        before: Snapshot = probe.snapshot()
        mark = lines(REQUEST_LOG) if REQUEST_LOG else 0
        cell = await loadgen.run_cell(http, target, concurrency=concurrency, stream=False, run=1,
                                      max_requests=max(self.cfg.cell_requests, 3 * concurrency),
                                      max_seconds=self.cfg.cell_seconds)
        await settle()
        after = probe.snapshot()
        n = len(cell.records)
        gross = usage(after, before, n)
        if REQUEST_LOG:  # the broker's request log (bench.kafka_costs_log): by API and client, per request
            counted = count(REQUEST_LOG, mark, lines(REQUEST_LOG))
            gross["logged"] = {kind: {k: round(v / n, 2) for k, v in c.most_common()} for kind, c in counted.items()}
        net_cpu = gross["cpu_ms"] - idle["cpu_ms"] * gross["seconds"] / n
        row = {"path": target.name, "concurrency": concurrency, "served": n,
               "errors": sum(1 for r in cell.records if r.error), "net_cpu_ms": round(net_cpu, 2), **gross}
        log.info("%-7s c=%-3d %4d req in %5.1f s: Kafka %.2f ms CPU/request gross, %.2f net of idle; requests %s",
                 target.name, concurrency, n, gross["seconds"], gross["cpu_ms"], net_cpu,
                 json.dumps(dict(list(gross["requests"].items())[:6])))
        return row


def _running(components: list[str] | None = None) -> dict[str, str]:
    """bench.infra.connect() for infrastructure that runs (`components` are not started): the endpoints, this
    process's clients the admin."""
    os.environ.update(infra.kafka_admin_env())
    return infra.endpoints()


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = config.parse(argv)
    cfg.litellm, cfg.bare, cfg.docs = False, False, False  # --no-record / --no-learning: the fleet without them
    stem = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    result = KafkaCosts(cfg, stem).run() | {"command": "python -m bench.kafka_costs " + " ".join(argv),
                                            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    out = cfg.out_dir / f"{stem}-{result['broker_pid']}-kafka-costs.json"  # two runs side by side: two files
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"idle: {result['idle_per_second']['cpu_ms']} ms CPU/s, requests/s {result['idle_per_second']['requests']}")
    for row in result["cells"]:
        threads = json.dumps(dict(list(row["threads_cpu_ms"].items())[:5]))
        print(f"{row['path']:8} c={row['concurrency']:<3} n={row['served']:<4} gross {row['cpu_ms']:6.2f} "
              f"net {row['net_cpu_ms']:6.2f} ms/req  threads {threads}")
    print(out)


if __name__ == "__main__":
    main(sys.argv[1:])
