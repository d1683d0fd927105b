"""Usage per day, tenant, key, mode and model in Postgres (one upserted row per combination) and one row per
settled request (`usage_requests`: what it was charged, answered or abandoned, settled by its owner, the
replica that resumed it, or the sweeper). The edge settles each request and publishes its charge on the `usage`
topic (gateway.metering); the control plane writes it here (control_plane.usage.recorder, once per response id)
and reads it (`GET /v1/usage`, control_plane.usage.api). The Prometheus figures are the edge's
(moe_core.access.usage_metrics).
"""

from __future__ import annotations

from datetime import date

import asyncpg
from pydantic import BaseModel, Field

from moe_core.access.limits import Limits

# One settled request: its row in usage_requests and, only if that row is new, added to its day's row (the day
# it was settled, else today).
RECORD_REQUEST = (
    "WITH new AS (INSERT INTO usage_requests (response_id, day, tenant_id, key_id, mode, model, prompt_tokens, "
    "completion_tokens, cost_micros, outcome, settled_by) VALUES ($9, COALESCE($12::date, "
    "(now() AT TIME ZONE 'UTC')::date), $1, $2, $3, $4, $6, $7, $8, $10, $11) "
    "ON CONFLICT (response_id) DO NOTHING RETURNING day) "
    "INSERT INTO usage_daily AS u (day, tenant_id, key_id, mode, model, requests, prompt_tokens, completion_tokens, "
    "cost_micros) SELECT day, $1::text, $2::text, $3::text, $4::text, $5::bigint, $6::bigint, $7::bigint, $8::bigint "
    "FROM new "
    "ON CONFLICT (day, tenant_id, key_id, mode, model) DO UPDATE SET requests = u.requests + $5, "
    "prompt_tokens = u.prompt_tokens + $6, completion_tokens = u.completion_tokens + $7, "
    "cost_micros = u.cost_micros + $8 RETURNING 1")

# Many settled requests in one statement (group commit, control_plane.usage.writes): the rows new to
# usage_requests, summed per day, tenant, key, mode and model into usage_daily; returns the new response ids.
RECORD_REQUESTS = (
    "WITH new AS (INSERT INTO usage_requests (response_id, day, tenant_id, key_id, mode, model, prompt_tokens, "
    "completion_tokens, cost_micros, outcome, settled_by) SELECT * FROM unnest($1::text[], $2::date[], $3::text[], "
    "$4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::bigint[], $10::text[], $11::text[]) "
    "ON CONFLICT (response_id) DO NOTHING RETURNING *), "
    "daily AS (INSERT INTO usage_daily AS u (day, tenant_id, key_id, mode, model, requests, prompt_tokens, "
    "completion_tokens, cost_micros) SELECT day, tenant_id, key_id, mode, model, count(*), sum(prompt_tokens), "
    "sum(completion_tokens), sum(cost_micros) FROM new GROUP BY day, tenant_id, key_id, mode, model "
    "ON CONFLICT (day, tenant_id, key_id, mode, model) DO UPDATE SET requests = u.requests + excluded.requests, "
    "prompt_tokens = u.prompt_tokens + excluded.prompt_tokens, "
    "completion_tokens = u.completion_tokens + excluded.completion_tokens, "
    "cost_micros = u.cost_micros + excluded.cost_micros) "
    "SELECT response_id FROM new")


class Charge(BaseModel):
    """One settled request's usage, as record_many writes it."""

    response_id: str
    day: date
    tenant_id: str
    key_id: str
    mode: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_micros: int
    outcome: str = "answered"
    settled_by: str = "owner"


class UsageFigures(BaseModel):
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost: float = Field(default=0.0, description="In the currency of the configured model prices")


class UsageRow(UsageFigures):
    date: date
    mode: str = Field(description="The fleet mode that served the requests")
    model: str = Field(description="The model id the client asked for")


class UsageReport(BaseModel):
    object: str = "usage"
    tenant_id: str | None
    key_id: str | None
    start: date
    end: date
    totals: UsageFigures
    data: list[UsageRow] = Field(description="One row per day, mode and model, ordered by day")
    limits: Limits | None = Field(default=None, description="The limits of the key or tenant asked about")
    current: dict[str, int | float] | None = Field(
        default=None, description="Counters now held against those limits (this minute, day and month)")


async def _keep_session(connection: asyncpg.Connection) -> None:
    """A connection back in the usage store's own pool is not reset (asyncpg's default costs a round trip per
    statement): its statements are single ones, auto-committed, and change nothing of the session."""


class UsageStore:
    def __init__(self, pool: asyncpg.Pool, own: bool = False) -> None:
        self.pool = pool
        self.own = own

    @classmethod
    async def connect(cls, dsn: str, max_size: int = 4) -> UsageStore:
        """A store on a pool of its own whose connections are not reset between statements: a charge written is
        one round trip, not two (the reset's: 0.1 ms of the writer's CPU and 0.15 ms of Postgres's per charge,
        python -m bench.usage_write_costs)."""
        return cls(await asyncpg.create_pool(dsn, min_size=1, max_size=max_size, reset=_keep_session), own=True)

    async def close(self) -> None:
        if self.own:
            await self.pool.close()

    async def record(self, *, tenant_id: str, key_id: str, mode: str, model: str, requests: int,
                     prompt_tokens: int, completion_tokens: int, cost_micros: int | None,
                     response_id: str | None = None, outcome: str = "answered", settled_by: str = "owner",
                     day: date | None = None) -> bool:
        """Add usage to its day's row (`day`, UTC; default today). With a response id: once per response — its
        row in usage_requests (answered or abandoned, and who settled it) is written in the same statement,
        and a response recorded before changes nothing (False)."""
        if response_id is not None:
            added = await self.pool.fetchval(RECORD_REQUEST, tenant_id, key_id, mode, model, requests, prompt_tokens,
                                             completion_tokens, cost_micros or 0, response_id, outcome, settled_by,
                                             day)
            return added is not None
        await self._add(tenant_id, key_id, mode, model, requests, prompt_tokens, completion_tokens, cost_micros)
        return True

    async def record_many(self, charges: list[Charge]) -> set[str]:
        """Write settled requests in one statement, each once per response id (a response recorded before, or
        twice in `charges`, is added once); returns the response ids this call added. One charge alone goes out
        as record does (the arrays' statement costs Postgres more for a single row)."""
        if len(charges) == 1:
            c = charges[0]
            added = await self.record(tenant_id=c.tenant_id, key_id=c.key_id, mode=c.mode, model=c.model, requests=1,
                                      prompt_tokens=c.prompt_tokens, completion_tokens=c.completion_tokens,
                                      cost_micros=c.cost_micros, response_id=c.response_id, outcome=c.outcome,
                                      settled_by=c.settled_by, day=c.day)
            return {c.response_id} if added else set()
        columns = [[getattr(c, f) for c in charges] for f in Charge.model_fields]
        return {r["response_id"] for r in await self.pool.fetch(RECORD_REQUESTS, *columns)}

    async def _add(self, tenant_id: str, key_id: str, mode: str, model: str, requests: int, prompt_tokens: int,
                   completion_tokens: int, cost_micros: int | None) -> None:
        await self.pool.execute(
            "INSERT INTO usage_daily AS u (day, tenant_id, key_id, mode, model, requests, prompt_tokens, "
            "completion_tokens, cost_micros) VALUES ((now() AT TIME ZONE 'UTC')::date, $1, $2, $3, $4, $5, $6, $7, $8) "
            "ON CONFLICT (day, tenant_id, key_id, mode, model) DO UPDATE SET requests = u.requests + $5, "
            "prompt_tokens = u.prompt_tokens + $6, completion_tokens = u.completion_tokens + $7, "
            "cost_micros = u.cost_micros + $8",
            tenant_id, key_id, mode, model, requests, prompt_tokens, completion_tokens, cost_micros or 0)

    async def rows(self, tenant_id: str | None, key_id: str | None, start: date, end: date) -> list[UsageRow]:
        records = await self.pool.fetch(
            "SELECT day, mode, model, sum(requests) AS requests, sum(prompt_tokens) AS prompt, "
            "sum(completion_tokens) AS completion, sum(cost_micros) AS cost FROM usage_daily "
            "WHERE day BETWEEN $1 AND $2 AND ($3::text IS NULL OR tenant_id = $3) "
            "AND ($4::text IS NULL OR key_id = $4) "
            "GROUP BY day, mode, model ORDER BY day, mode, model", start, end, tenant_id, key_id)
        return [UsageRow(date=r["day"], mode=r["mode"], model=r["model"], requests=r["requests"],
                         prompt_tokens=r["prompt"], completion_tokens=r["completion"],
                         total_tokens=r["prompt"] + r["completion"], cost=r["cost"] / 1_000_000) for r in records]
