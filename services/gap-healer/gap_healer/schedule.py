"""The graph's maintenance on a schedule: lint and heal runs on their intervals, one runner at a time across
replicas (a Redis lock per kind), each run recorded in the run history (Postgres) and counted in the graph
metrics; on every tick the graph gauges (size, gaps, quarantine) are refreshed from Neo4j.

A kind is due when its last run in the history started at least its interval ago; one that never ran is due
one interval after this process started (at once with MOE_GRAPH_SCHEDULE_RUN_AT_START). Due-ness is checked
under the lock, so replicas ticking together start one run. `python -m gap_healer run <kind>` (the Helm
CronJob) runs a kind at once through the same lock and history."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from neo4j.exceptions import Neo4jError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gap_healer.runs import RUNNERS, GapHealer
from gap_healer.settings import GapHealerSettings
from moe_core.knowledge.graph.driver import GraphUnavailable
from moe_core.knowledge.graph.measure import count_graph
from moe_core.knowledge.graph.run_history import RUN_KINDS, RunHistory, RunKind
from moe_core.runtime.observability.metrics import (
    GRAPH_DECAY_DELETIONS,
    GRAPH_GAP_DECISIONS,
    GRAPH_GAPS,
    GRAPH_LINT_FINDINGS,
    GRAPH_QUARANTINE,
    GRAPH_RUN_LAST_SUCCESS,
    GRAPH_RUNS,
    GRAPH_SIZE,
)

log = logging.getLogger(__name__)
REPLICA = f"{socket.gethostname()}:{os.getpid()}"
RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
STORE_ERRORS = (OSError, asyncpg.PostgresError, RedisError, GraphUnavailable, Neo4jError)


@dataclass
class RunResult:
    kind: RunKind
    run_id: str | None  # None: not run (another runner holds the lock, or not due)
    outcome: str = "skipped"
    counts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class Scheduler:
    def __init__(self, healer: GapHealer, settings: GapHealerSettings, redis: Redis) -> None:
        self.healer = healer
        self.settings = settings
        self.redis = redis
        self.history: RunHistory | None = None
        self.started = time.time()
        self.intervals: dict[RunKind, float] = {"lint": settings.graph_lint_interval_s,
                                                "heal": settings.graph_heal_interval_s}
        for check in ("contradictions", "decay", "orphans"):  # every series exists from the start (at 0)
            GRAPH_LINT_FINDINGS.labels(check)
        for outcome in ("healed", "rejected", "quarantined", "failed"):
            GRAPH_GAP_DECISIONS.labels(outcome)
        GRAPH_DECAY_DELETIONS.inc(0)
        for kind in RUN_KINDS:
            GRAPH_RUNS.labels(kind, "schedule", "ok")

    async def close(self) -> None:
        if self.history is not None:
            await self.history.close()
            self.history = None

    async def _history(self) -> RunHistory:
        if self.history is None:
            self.history = await RunHistory.connect(self.settings.postgres_dsn, self.settings.topic_namespace)
        return self.history

    async def loop(self) -> None:
        """Tick until cancelled (the service's background task)."""
        while True:
            await self.tick()
            await asyncio.sleep(self.settings.graph_schedule_tick_s)

    async def tick(self) -> list[RunResult]:
        done: list[RunResult] = []
        try:
            await self.measure()
            if self.settings.graph_schedule_enabled:
                for kind in RUN_KINDS:
                    if self.intervals[kind] > 0:
                        done.append(await self.run(kind, "schedule", force=False))
        except STORE_ERRORS as exc:  # a store outage skips this tick; the next one tries again
            log.warning("graph schedule tick skipped: %s: %s", type(exc).__name__, exc)
        return done

    async def measure(self) -> None:
        counts = await count_graph(self.healer.db)
        GRAPH_SIZE.labels("entities").set(counts.entities)
        GRAPH_SIZE.labels("relations").set(counts.relations)
        for state, n in counts.gaps.items():
            GRAPH_GAPS.labels(state).set(n)
        for status, n in counts.quarantine.items():
            GRAPH_QUARANTINE.labels(status).set(n)

    async def due(self, kind: RunKind) -> bool:
        interval = self.intervals[kind]
        last = await (await self._history()).last_started(kind)
        if last is None:
            return self.settings.graph_schedule_run_at_start or time.time() - self.started >= interval
        return (datetime.now(UTC) - last).total_seconds() >= interval

    async def run(self, kind: RunKind, trigger: str, *, force: bool = True) -> RunResult:
        """Run `kind` now if this process gets the lock (and, unless forced, the kind is due)."""
        history = await self._history()
        lock, token = f"graph-schedule:{self.settings.topic_namespace}:{kind}", os.urandom(12).hex()
        timeout = self.settings.graph_run_timeout_s
        if not await self.redis.set(lock, token, nx=True, px=int((timeout + 60) * 1000)):
            return RunResult(kind, None, "locked")
        try:
            if not force and not await self.due(kind):
                return RunResult(kind, None, "not_due")
            return await self._run(history, kind, trigger)
        finally:
            await self.redis.eval(RELEASE, 1, lock, token)

    async def _run(self, history: RunHistory, kind: RunKind, trigger: str) -> RunResult:
        run_id = await history.start(kind, trigger, REPLICA)
        log.info("graph %s run %s started (%s)", kind, run_id, trigger)
        try:
            counts = await asyncio.wait_for(RUNNERS[kind](self.healer, self.settings, run_id),
                                            self.settings.graph_run_timeout_s)
        except Exception as exc:  # any failure is the run's outcome: recorded, never lost
            error = f"{type(exc).__name__}: {exc}"
            log.warning("graph %s run %s failed: %s", kind, run_id, error)
            await history.finish(run_id, "failed", {}, error)
            GRAPH_RUNS.labels(kind, trigger, "failed").inc()
            return RunResult(kind, run_id, "failed", {}, error)
        await history.finish(run_id, "ok", counts)
        GRAPH_RUNS.labels(kind, trigger, "ok").inc()
        GRAPH_RUN_LAST_SUCCESS.labels(kind).set_to_current_time()
        log.info("graph %s run %s finished: %s", kind, run_id, counts)
        await self.measure()
        return RunResult(kind, run_id, "ok", counts)
