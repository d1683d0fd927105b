"""Rate limits and budgets per key and per tenant, enforced atomically in Redis.

Before a request enters the fleet its token cap is *reserved*: one Lua script checks every counter of the
key and of its tenant (requests and tokens this minute, tokens and cost this UTC day and month) and adds
the cap to all of them — the tokens wanted, or as many as every limit still has room for, never fewer than
the request's own estimate (else 429). Concurrent requests cannot overspend: each sees the reservations of
the others. The cap becomes the request's token budget in the fleet (moe_core.llm.token_budget), which its
model calls together cannot exceed. When the Answer arrives the reservation is *settled*: the difference
between the Answer's usage and the cap is added (a refund).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio import Redis

from moe_core.runtime.openai_error import OpenAIError

Scope = Literal["key", "tenant", "client"]  # client: an address (failed key lookups)
UNLIMITED = 2**53  # a counter that is kept (for a limit set later) but never refuses
MAX_RATE = 10_000_000  # requests per minute: anything above is a typo, not a limit
MAX_TOKENS = 10**13
MAX_COST = 10**9

# The counters' checks and takes, shared by RESERVE and moe_core.access.edge_hit's RESERVE_OR_HIT (one copy of
# the rule). ARGV[1..3]: tokens wanted, tokens at least, cost micros per token; counter i's (limit, kind, ttl)
# at ARGV[3 * i + base .. 3 * i + base + 2]. check: the first counter without room (its index) and 0, or 0
# and the grant: the tokens wanted, or as many as every token and cost counter has room for (never fewer than
# the least). take: counts the grant in every counter (a request counter 1, a cost counter its cost).
COUNTER_RULES = """
local want, least, rate = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local function check(n, base)
  local grant = want
  for i = 1, n do
    local limit, kind = tonumber(ARGV[3 * i + base]), ARGV[3 * i + base + 1]
    local room = limit - tonumber(redis.call('GET', KEYS[i]) or '0')
    if kind == 'cost' then
      if rate > 0 then room = math.floor(room / rate) else room = grant end
    end
    if kind == 'requests' then
      if room < 1 then return i, 0 end
    else
      if room < least then return i, 0 end
      if room < grant then grant = room end
    end
  end
  return 0, grant
end
local function take(n, base, grant)
  for i = 1, n do
    local kind, amount = ARGV[3 * i + base + 1], grant
    if kind == 'requests' then amount = 1 elseif kind == 'cost' then amount = math.ceil(grant * rate) end
    redis.call('INCRBY', KEYS[i], amount)
    if redis.call('TTL', KEYS[i]) < 0 then redis.call('EXPIRE', KEYS[i], ARGV[3 * i + base + 2]) end
  end
end
"""
# ARGV: tokens wanted, tokens at least, cost micros per token, then (limit, kind, ttl) per counter (KEYS).
RESERVE = COUNTER_RULES + """
local refused, grant = check(#KEYS, 1)
if refused > 0 then return {refused, 0} end
take(#KEYS, 1, grant)
return {0, grant}
"""
SETTLE = """
for i = 1, #KEYS do
  if tonumber(ARGV[2 * i - 1]) ~= 0 then
    redis.call('INCRBY', KEYS[i], ARGV[2 * i - 1])
    if redis.call('TTL', KEYS[i]) < 0 then redis.call('EXPIRE', KEYS[i], ARGV[2 * i]) end
  end
end
return 0
"""


class Limits(BaseModel):
    """Limits of one key or one tenant; a missing field is no limit. Costs are in the currency of the
    configured model prices (MOE_MODEL_PRICES), e.g. USD."""

    model_config = ConfigDict(extra="forbid")

    requests_per_minute: int | None = Field(default=None, ge=0, le=MAX_RATE)
    tokens_per_minute: int | None = Field(default=None, ge=0, le=MAX_TOKENS)
    tokens_per_day: int | None = Field(default=None, ge=0, le=MAX_TOKENS)
    tokens_per_month: int | None = Field(default=None, ge=0, le=MAX_TOKENS)
    cost_per_day: float | None = Field(default=None, ge=0, le=MAX_COST)
    cost_per_month: float | None = Field(default=None, ge=0, le=MAX_COST)


class ModelPrice(BaseModel):
    """Price of a model (mode) per million tokens."""

    model_config = ConfigDict(extra="forbid")

    input: float = Field(ge=0, le=1_000_000)
    output: float = Field(ge=0, le=1_000_000)

    def micros(self, prompt_tokens: int, completion_tokens: int) -> int:
        """Cost in millionths of the currency unit (a price per 1M tokens is micro-units per token)."""
        return math.ceil(prompt_tokens * self.input + completion_tokens * self.output)

    @property
    def micros_per_token(self) -> float:
        """The most one token can cost (input or output): what a cap of tokens may cost at most."""
        return max(self.input, self.output)


class LimitExceeded(OpenAIError):
    """429 with Retry-After; rendered in the envelope of the API that was called."""

    def __init__(self, scope: Scope, limit: str, retry_after_s: int) -> None:
        super().__init__(429, f"Rate limit reached: the {scope}'s {limit.replace('_', ' ')} limit would be "
                              f"exceeded. Retry after {retry_after_s} s.", "rate_limit_error",
                         code="rate_limit_exceeded")
        self.scope, self.limit, self.retry_after_s = scope, limit, retry_after_s
        self.headers = {"Retry-After": str(retry_after_s)}


@dataclass(frozen=True)
class Window:
    name: Literal["minute", "day", "month"]
    label: str  # this window's id in counter keys
    ttl_s: int
    retry_after_s: int  # seconds until the window ends


def windows(now: datetime | None = None) -> dict[str, Window]:
    now = now or datetime.now(UTC)
    epoch = int(now.timestamp())
    day_end = datetime(now.year, now.month, now.day, tzinfo=UTC).timestamp() + 86_400
    next_month = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC).timestamp()
    return {
        "minute": Window("minute", str(epoch // 60), 120, 60 - epoch % 60),
        "day": Window("day", now.strftime("%Y%m%d"), 2 * 86_400, max(1, math.ceil(day_end - epoch))),
        "month": Window("month", now.strftime("%Y%m"), 33 * 86_400, max(1, math.ceil(next_month - epoch))),
    }


# limit field -> (window, what the counter counts)
COUNTERS: dict[str, tuple[str, Literal["requests", "tokens", "cost"]]] = {
    "requests_per_minute": ("minute", "requests"),
    "tokens_per_minute": ("minute", "tokens"),
    "tokens_per_day": ("day", "tokens"),
    "tokens_per_month": ("month", "tokens"),
    "cost_per_day": ("day", "cost"),
    "cost_per_month": ("month", "cost"),
}


@dataclass
class Counter:
    key: str
    scope: Scope
    limit_name: str
    kind: Literal["requests", "tokens", "cost"]
    window: Window
    limit: int  # in requests, tokens or cost micros


@dataclass
class Reservation:
    """What one request holds in Redis until it is settled."""

    counters: list[Counter]
    tokens: int
    cost_micros: int
    settled: bool = field(default=False)


class Limiter:
    def __init__(self, redis: Redis, namespace: str) -> None:
        self.redis = redis
        self.prefix = f"moe:limits:{namespace}"
        self._reserve = redis.register_script(RESERVE)
        self._settle = redis.register_script(SETTLE)

    def counters(self, scopes: list[tuple[Scope, str, Limits]], priced: bool,
                 now: datetime | None = None) -> list[Counter]:
        """Every counter of every scope (kept even without a limit, so a limit set later sees the usage
        so far); cost counters only when the model has a price."""
        found = windows(now)
        out = []
        for scope, ident, limits in scopes:
            for name, (window_name, kind) in COUNTERS.items():
                if kind == "cost" and not priced:
                    continue
                window = found[window_name]
                value = getattr(limits, name)
                limit = UNLIMITED if value is None else (round(value * 1_000_000) if kind == "cost" else int(value))
                out.append(Counter(f"{self.prefix}:{scope}:{ident}:{name}:{window.label}", scope, name, kind,
                                   window, limit))
        return out

    async def reserve(self, counters: list[Counter], want: int, least: int, micros_per_token: float) -> Reservation:
        """Reserve atomically `want` tokens, or fewer (as many as every limit has room for, at least `least`),
        and their cost at `micros_per_token`; or raise LimitExceeded naming the first limit without room."""
        args: list[int | float | str] = [want, least, micros_per_token]
        for counter in counters:
            args += [counter.limit, counter.kind, counter.window.ttl_s]
        refused, grant = (int(v) for v in await self._reserve(keys=[c.key for c in counters], args=args))
        if refused:
            counter = counters[refused - 1]
            raise LimitExceeded(counter.scope, counter.limit_name, counter.window.retry_after_s)
        return Reservation(counters, grant, math.ceil(grant * micros_per_token))

    def counter(self, scope: Scope, ident: str, name: str, limit: int, now: datetime | None = None) -> Counter:
        """A requests-per-minute counter of its own: an endpoint's calls per key, failed key lookups per client
        (moe_core.access.throttle, moe_core.access.key_guard)."""
        window = windows(now)["minute"]
        return Counter(f"{self.prefix}:{scope}:{ident}:{name}:{window.label}", scope, name, "requests", window, limit)

    async def take(self, counter: Counter) -> Reservation:
        """Count one request against `counter`, or raise LimitExceeded; settle(..., requests=0) gives it back."""
        return await self.reserve([counter], 0, 0, 0.0)

    async def settle(self, reservation: Reservation, tokens: int, cost_micros: int, *, requests: int = 1) -> None:
        """Replace the reservation by what was used (requests=0 also gives the request back)."""
        if reservation.settled:
            return
        reservation.settled = True
        deltas = [_amount(c, requests - 1, tokens - reservation.tokens, cost_micros - reservation.cost_micros)
                  for c in reservation.counters]
        args: list[int] = []
        for counter, delta in zip(reservation.counters, deltas, strict=True):
            args += [delta, counter.window.ttl_s]
        await self._settle(keys=[c.key for c in reservation.counters], args=args)

    async def used(self, scope: Scope, ident: str, now: datetime | None = None) -> dict[str, int | float]:
        """The current value of each counter of one key or tenant (costs in currency units)."""
        counters = self.counters([(scope, ident, Limits())], priced=True, now=now)
        values = await self.redis.mget([c.key for c in counters])
        return {c.limit_name: (int(v or 0) / 1_000_000 if c.kind == "cost" else int(v or 0))
                for c, v in zip(counters, values, strict=True)}


def _amount(counter: Counter, requests: int, tokens: int, cost_micros: int) -> int:
    return {"requests": requests, "tokens": tokens, "cost": cost_micros}[counter.kind]
