"""The history of the graph's maintenance runs (scheduled lint and heal runs, cron jobs, manual runs) in
Postgres: when a run started and finished, its kind and trigger, what it changed (counts) and its outcome.
One table for the whole fleet; `namespace` (MOE_TOPIC_NAMESPACE) keeps fleets that share a database apart.
Written by the gap-healer, read by the gateway (GET /v1/admin/graph-runs); the table is made by the migrator
role (moe_core.runtime.pg.ddl)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, Literal

import asyncpg

RunKind = Literal["lint", "heal"]
RUN_KINDS: tuple[RunKind, ...] = ("lint", "heal")
Outcome = Literal["running", "ok", "failed"]

START = """
INSERT INTO graph_runs (id, namespace, kind, trigger, replica) VALUES ($1, $2, $3, $4, $5)
RETURNING started_at
"""
FINISH = """
UPDATE graph_runs SET finished_at = now(), outcome = $2, counts = $3::jsonb, error = $4 WHERE id = $1
"""
LAST_STARTED = "SELECT max(started_at) FROM graph_runs WHERE namespace = $1 AND kind = $2"
RECENT = """
SELECT id, kind, trigger, replica, started_at, finished_at, outcome, counts, error FROM graph_runs
WHERE namespace = $1 AND ($2::text IS NULL OR kind = $2) AND ($3::text IS NULL OR outcome = $3)
ORDER BY started_at DESC, id
LIMIT $4
"""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


class RunHistory:
    def __init__(self, pool: asyncpg.Pool, namespace: str) -> None:
        self.pool = pool
        self.namespace = namespace

    @classmethod
    async def connect(cls, dsn: str, namespace: str) -> RunHistory:
        return cls(await asyncpg.create_pool(dsn, min_size=1, max_size=2), namespace)

    async def close(self) -> None:
        await self.pool.close()

    async def start(self, kind: RunKind, trigger: str, replica: str) -> str:
        run_id = f"run-{uuid.uuid4().hex[:20]}"
        await self.pool.fetchval(START, run_id, self.namespace, kind, trigger, replica)
        return run_id

    async def finish(self, run_id: str, outcome: Outcome, counts: dict[str, Any], error: str | None = None) -> None:
        await self.pool.execute(FINISH, run_id, outcome, json.dumps(counts), error[:2000] if error else None)

    async def last_started(self, kind: RunKind) -> datetime | None:
        value: datetime | None = await self.pool.fetchval(LAST_STARTED, self.namespace, kind)
        return value

    async def recent(self, kind: str | None = None, outcome: str | None = None,
                     limit: int = 50) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(RECENT, self.namespace, kind, outcome, limit)
        return [{"id": r["id"], "kind": r["kind"], "trigger": r["trigger"], "replica": r["replica"],
                 "started_at": _iso(r["started_at"]), "finished_at": _iso(r["finished_at"]),
                 "outcome": r["outcome"], "counts": json.loads(r["counts"]), "error": r["error"]} for r in rows]
