"""What settling a request needs, kept in Redis beside its token budget, and the claim that lets exactly one
settler fleet-wide settle it: the edge's metering (gateway.metering) or the control plane's sweeper
(control_plane.usage.settle_sweep), both through moe_core.access.settler. The declared reader and writer of the
`moe:settle:` keys (moe_core.runtime.redis_keys).

The edge opens a request in the script that reserves it (moe_core.access.edge_hit): its token budget and its
*hold* — the reservation's counters and amounts, key, tenant, mode, model, price and estimates — as a hash
`moe:settle:<ns>:<response_id>`, indexed in `moe:settle:<ns>:due` (a sorted set scored by the time its owner
must have settled it). Any replica may then settle it: the owner on its Answer or when it is abandoned, a
replica that resumed its stream (gateway.resume), or the control plane's sweeper (control_plane.usage.settle_sweep)
when its owner died.

`claim` (one script) closes the budget, decides the usage once — the first claim's usage is kept, a later
claim reuses it — and takes a lease; only the lease holder charges. `finish` (one script) applies the
counters' deltas, marks the hold settled and drops it from the index, once: a second finish changes
nothing. The usage row is written between the two, idempotent per response id (moe_core.access.usage_store), so
a settler that dies after its claim leaves a hold the sweeper settles after the lease, with the same usage,
charged once. The edge applies the deltas right after its claim (`apply`, once: the finish then leaves the
counters be), so its reply goes out before the usage event and the finish (issue 52) while the client's next
request already finds the room its answer left. A claim on an Answer may carry one more write of the caller's,
sent in its round trip: the answer's record for feedback (moe_core.llm.answer_records), written whatever the
claim finds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal, cast

from pydantic import BaseModel
from redis.asyncio import Redis

from moe_core.access.limits import ModelPrice, Reservation
from moe_core.llm.token_budget import TokenBudgets

LEASE_S = 30.0  # a settler that died holding its claim is replaced after this
DONE_TTL_S = 900  # a settled hold is kept this long: a late resume still marks an out-of-budget answer
Kind = Literal["answer", "spent", "withdraw"]
State = Literal["mine", "done", "busy", "none"]

# The counters' deltas, once per hold: by CLAIM (the edge's on its Answer: with the hold it reserved), APPLY or
# FINISH, whichever comes first. KEYS[first..] are the counters, ARGV[arg..] their (delta, ttl).
DELTAS = """
local function deltas(first, arg)
  if redis.call('HEXISTS', KEYS[1], 'applied') == 1 then return end
  for i = first, #KEYS do
    local delta, ttl = ARGV[2 * (i - first) + arg], ARGV[2 * (i - first) + arg + 1]
    if tonumber(delta) ~= 0 then
      redis.call('INCRBY', KEYS[i], delta)
      if redis.call('TTL', KEYS[i]) < 0 then redis.call('EXPIRE', KEYS[i], ttl) end
    end
  end
  redis.call('HSET', KEYS[1], 'applied', '1')
end
"""
# KEYS: hold, lease, budget, exhausted, a key to SET (or the hold again: none), counters... ARGV: kind, prompt,
# completion, lease ms, outcome, the SET's value ('': none) and ttl, the hold the caller reserved ('': none), then
# (delta, ttl) per counter: the deltas of that hold with this usage, applied here (as APPLY) when the claim is
# the caller's, its hold is that one and the usage decided is the one given — the edge's claim on its Answer and
# the apply before its reply in one round trip. Returns {state, hold json, usage "prompt completion outcome",
# exhausted, applied}.
CLAIM = DELTAS + """
if ARGV[6] ~= '' then redis.call('SET', KEYS[5], ARGV[6], 'EX', ARGV[7]) end
local hold = redis.call('HGET', KEYS[1], 'hold')
if not hold then return {'none', '', '', 0, 0} end
local exhausted = redis.call('EXISTS', KEYS[4])
local usage = redis.call('HGET', KEYS[1], 'usage') or ''
if redis.call('HEXISTS', KEYS[1], 'done') == 1 then return {'done', hold, usage, exhausted, 0} end
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[4]) then return {'busy', hold, usage, exhausted, 0} end
local left = redis.call('GET', KEYS[3])
if left then redis.call('SET', KEYS[3], '0', 'KEEPTTL') end
if usage == '' then
  if ARGV[1] == 'spent' then
    local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens'))
    local spent = tokens
    if left then spent = tokens - tonumber(left) end
    if spent < 0 then spent = 0 end
    local prompt = math.min(tonumber(redis.call('HGET', KEYS[1], 'prompt')), spent)
    usage = prompt .. ' ' .. (spent - prompt) .. ' ' .. ARGV[5]
  elseif ARGV[1] == 'withdraw' then
    usage = '0 0 withdrawn'
  else
    usage = ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[5]
  end
  redis.call('HSET', KEYS[1], 'usage', usage)
end
if ARGV[8] ~= '' and hold == ARGV[8] and usage == ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[5] then
  deltas(6, 9)
  return {'mine', hold, usage, exhausted, 1}
end
return {'mine', hold, usage, exhausted, 0}
"""
# KEYS: hold, counters... ARGV: response id, unused, then (delta, ttl) per counter.
APPLY = DELTAS + """
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'done') == 1 then return 0 end
if redis.call('HEXISTS', KEYS[1], 'applied') == 1 then return 0 end
deltas(2, 3)
return 1
"""
# KEYS: hold, lease, index, counters... ARGV: response id, done ttl, then (delta, ttl) per counter.
FINISH = DELTAS + """
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'done') == 1 then return 0 end
deltas(4, 3)
redis.call('HSET', KEYS[1], 'done', '1')
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
"""


class Hold(BaseModel):
    """What settling one request needs."""

    key_id: str
    tenant_id: str
    mode: str
    model: str
    price: ModelPrice | None
    prompt: int  # the estimates reserved
    completion: int
    tokens: int  # the reservation (the budget opened)
    cost_micros: int
    counters: list[tuple[str, str, int]]  # (Redis key, kind, ttl) of each limit counter charged
    created: float  # the request's creation and deadline (epoch seconds)
    deadline: float

    @classmethod
    def of(cls, reservation: Reservation, **fields: object) -> Hold:
        counters = [(c.key, c.kind, c.window.ttl_s) for c in reservation.counters]
        return cls.model_validate({**fields, "tokens": reservation.tokens, "cost_micros": reservation.cost_micros,
                                   "counters": counters})

    def cost(self, prompt: int, completion: int) -> int | None:
        return self.price.micros(prompt, completion) if self.price else None


@dataclass(frozen=True)
class Write:
    """A SET with a TTL (seconds) that rides in a claim's round trip."""

    key: str
    value: str
    ttl_s: int


@dataclass(frozen=True)
class Claim:
    """mine: this caller settles; done: settled already; busy: another settler holds it; none: no hold."""

    state: State
    hold: Hold | None
    prompt: int
    completion: int
    outcome: str  # answered | abandoned | withdrawn
    exhausted: bool  # a model call of the request was refused for want of budget
    applied: bool = False  # the counters' deltas were applied in the claim's round trip (`claim`'s `reserved`)


class Settlements:
    def __init__(self, redis: Redis, namespace: str, budgets: TokenBudgets) -> None:
        self.redis = redis
        self.budgets = budgets
        self.prefix = f"moe:settle:{namespace}"
        self.index = f"{self.prefix}:due"
        self._claim = redis.register_script(CLAIM)
        self._finish = redis.register_script(FINISH)
        self._apply = redis.register_script(APPLY)

    def key(self, response_id: str) -> str:
        return f"{self.prefix}:{response_id}"

    async def claim(self, response_id: str, kind: Kind, prompt: int = 0, completion: int = 0,
                    outcome: str = "answered", lease_s: float = LEASE_S, also: Write | None = None,
                    reserved: Hold | None = None) -> Claim:
        """Close the budget and claim the settling: `answer` usage as given, `spent` what the budget lost
        (prompt first, up to the estimate), `withdraw` nothing (the request never entered the fleet). also: a
        write of the caller's (a SET with a TTL) sent in the same round trip, whatever the claim finds.
        reserved: the hold the caller opened (the edge that reserved the request): when the claim is the caller's,
        finds that hold and decides the usage given, the counters' deltas are applied in the same round trip, as
        `apply` would (Claim.applied); otherwise the caller applies the claimed usage itself."""
        budget = self.budgets.key(response_id)
        hold_key = self.key(response_id)
        keys = [hold_key, f"{hold_key}:lease", budget, f"{budget}:exhausted", also.key if also else hold_key]
        args: list[int | str] = [kind, prompt, completion, max(1, round(lease_s * 1000)), outcome,
                                 also.value if also else "", max(1, also.ttl_s) if also else 1,
                                 reserved.model_dump_json() if reserved is not None else ""]
        if reserved is not None:
            keys += [c[0] for c in reserved.counters]
            args += _deltas(Claim("mine", reserved, prompt, completion, outcome, False), reserved)
        state, raw, usage, exhausted, applied = await self._claim(keys=keys, args=args)
        hold = Hold.model_validate_json(raw) if raw else None
        parts = str(usage).split() if usage else ["0", "0", ""]
        return Claim(cast(State, state), hold, int(parts[0]), int(parts[1]), parts[2], bool(int(exhausted)),
                     bool(int(applied)))

    async def apply(self, response_id: str, claim: Claim) -> bool:
        """Replace the reservation by the claimed usage in every counter now, once (the claim's holder, before the
        usage event: a client's next request finds the room its answer left); the hold stays due until `finish`.
        False if applied or settled already."""
        hold = claim.hold
        assert hold is not None
        keys = [self.key(response_id)] + [c[0] for c in hold.counters]
        return bool(await self._apply(keys=keys, args=[response_id, 0, *_deltas(claim, hold)]))

    async def finish(self, response_id: str, claim: Claim) -> bool:
        """Replace the reservation by the claimed usage in every counter, once (unless `apply` did), and mark the
        hold settled; False if already done."""
        hold = claim.hold
        assert hold is not None
        keys = [self.key(response_id), f"{self.key(response_id)}:lease", self.index] + [c[0] for c in hold.counters]
        return bool(await self._finish(keys=keys, args=[response_id, DONE_TTL_S, *_deltas(claim, hold)]))

    async def due(self, now: float, batch: int) -> list[str]:
        """Response ids whose owner should have settled them by `now` (oldest first, at most `batch`)."""
        found = await self.redis.zrangebyscore(self.index, "-inf", now, start=0, num=batch)
        return [str(rid) for rid in found]

    async def holds(self, response_ids: list[str]) -> dict[str, Hold]:
        """The holds of these requests that are still kept (one round trip); the others leave the index."""
        pipe = self.redis.pipeline(transaction=False)
        for rid in response_ids:
            pipe.hget(self.key(rid), "hold")
        found = dict(zip(response_ids, await pipe.execute(), strict=True))
        gone = [rid for rid, raw in found.items() if not raw]
        if gone:
            await self.redis.zrem(self.index, *gone)
        return {rid: Hold.model_validate(json.loads(raw)) for rid, raw in found.items() if raw}

    async def sweep_turn(self, ttl_s: float) -> bool:
        """One replica sweeps per interval: True for the one that took this turn."""
        return bool(await self.redis.set(f"{self.prefix}:sweep", "1", nx=True, px=max(1, round(ttl_s * 1000))))


def _deltas(claim: Claim, hold: Hold) -> list[int]:
    """(delta, ttl) per counter of the hold: the claimed usage in place of the reservation."""
    requests = 0 if claim.outcome == "withdrawn" else 1
    cost = hold.cost(claim.prompt, claim.completion) or 0
    amounts = {"requests": requests - 1, "tokens": claim.prompt + claim.completion - hold.tokens,
               "cost": cost - hold.cost_micros}
    out: list[int] = []
    for _, kind, ttl in hold.counters:
        out += [amounts[kind], ttl]
    return out
