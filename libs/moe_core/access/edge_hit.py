"""The limits of a request and its opening, with the cached answer of an exact repeat, in one Redis round trip.

A question asked again word for word is answered at the edge (moe_core.llm.exact_cache). Before, that cost the
reservation (moe_core.access.limits), the hold (moe_core.access.settlement) and the cached answer as three
round trips, and its settling two more before the reply. RESERVE_OR_HIT does it in one script: it checks every
counter of the key and its tenant exactly as RESERVE does (the same 429s: requests this minute, room for the
request's estimate in every token and cost limit), then reads the cached answer (when there is one to read).
- A hit: the request is counted (requests +1; a hit uses no tokens and costs nothing, which is what reserving
  and settling it used to leave in the counters) and its hold is written already decided — usage `0 0 answered`,
  claimed by the caller (its lease) and indexed by when it is due — so that settling it after the reply is the
  usage event and `finish` (moe_core.access.settlement), and a replica that dies before that leaves it to the
  control plane's sweeper, which charges it the same, once.
- A miss (or a request with no cached answer to look up): the tokens are reserved as RESERVE reserves them and,
  in the same script, the request is opened as Settlements.open opens it — its token budget (the grant) and its
  hold (the grant and its cost in the hold's JSON) indexed by when it is due. A request is either refused with
  nothing counted, or reserved and opened: no reservation is left without its budget.
Two more things ride in the same round trip (issue 52: a hit waited for three round trips before its reply):
- A hit's record for feedback (moe_core.llm.answer_records): the caller gives the record's key and its
  request-side fields; the script adds the entry's cache key and models (as the Answer carries them), so the record
  exists before the client has the answer, as before. A hit the caller does not answer after all deletes it.
- The check that the caller's view of the live overlay (moe_core.llm.inference.live: the console's client
  profiles, which choose the request's mode, template and token cap, hence its exact key and estimate) is the
  one in force: its SHA-1 against the key's. Stale: nothing is counted or written and the overlay is returned,
  for the caller to shape the request again with it (`Stale`). The console's change still applies to the next
  request, without a GET of its own before every request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from moe_core.access.limits import COUNTER_RULES, Counter, Limiter, LimitExceeded, Reservation
from moe_core.access.settlement import LEASE_S, Hold, Settlements

# The hold's JSON around its two amounts (Hold: tokens, then cost_micros), filled in by the script with the grant.
AMOUNTS = '"tokens":0,"cost_micros":0'
# KEYS: the n counters, then the cached answer, the hold, its lease, the due index, the budget, the hit's record,
# the overlay. ARGV: tokens wanted, tokens at least, cost micros per token, n, (limit, kind, ttl) per counter, then
# the hold's JSON before and after its amounts, prompt estimate, hold ttl, due, response id, lease ms, budget ttl,
# look up ('1': read the cached answer; '0': KEYS[n + 1] is not read), the record's JSON up to its entry fields
# ('': no record), its ttl, the overlay's SHA-1 as the caller knows it ('': none; '-': not checked). Returns
# {-1, 0, overlay} (stale: nothing done) | {refused counter, 0} | {0, grant} (reserved and opened) |
# {0, 0, entry} (a hit).
# A request's hold (its response id's) that is there and not settled is this script's own earlier run for the
# request, whose reply was lost (a timeout: the caller tries again, gateway.metering): its outcome is returned again
# before anything is checked, counted or written: the reservation's grant, or the hit with the entry read again
# ('' if it is gone since: the caller withdraws it as damaged). A settled hold (a hit withdrawn as damaged, whose
# request is then reserved as a miss) and a hit's hold met without a look-up are reserved afresh.
RESERVE_OR_HIT = COUNTER_RULES + """
local n = tonumber(ARGV[4])
local b = 3 * n + 5
local earlier = redis.call('HMGET', KEYS[n + 2], 'tokens', 'usage', 'done')
if earlier[1] and not earlier[3] then  -- this request's own run, its reply lost: its outcome again, nothing more
  if not earlier[2] then return {0, tonumber(earlier[1])} end
  if ARGV[b + 8] == '1' then return {0, 0, redis.call('GET', KEYS[n + 1]) or ''} end
end
if ARGV[b + 11] ~= '-' then
  local overlay = redis.call('GET', KEYS[n + 7])
  local seen = ''
  if overlay then seen = redis.sha1hex(overlay) end
  if seen ~= ARGV[b + 11] then return {-1, 0, overlay or ''} end
end
local refused, grant = check(n, 2)
if refused > 0 then return {refused, 0} end
local function hold(tokens, cost)
  local amounts = '"tokens":' .. string.format('%d', tokens) .. ',"cost_micros":' .. string.format('%d', cost)
  redis.call('DEL', KEYS[n + 2])
  redis.call('HSET', KEYS[n + 2], 'hold', ARGV[b] .. amounts .. ARGV[b + 1], 'tokens', string.format('%d', tokens),
             'prompt', ARGV[b + 2])
  redis.call('EXPIRE', KEYS[n + 2], ARGV[b + 3])
  redis.call('ZADD', KEYS[n + 4], ARGV[b + 4], ARGV[b + 5])
end
local entry = false
if ARGV[b + 8] == '1' then entry = redis.call('GET', KEYS[n + 1]) end
if entry then
  for i = 1, n do
    if ARGV[3 * i + 3] == 'requests' then
      redis.call('INCRBY', KEYS[i], 1)
      if redis.call('TTL', KEYS[i]) < 0 then redis.call('EXPIRE', KEYS[i], ARGV[3 * i + 4]) end
    end
  end
  hold(0, 0)
  redis.call('HSET', KEYS[n + 2], 'usage', '0 0 answered')
  redis.call('SET', KEYS[n + 3], '1', 'PX', ARGV[b + 6])
  if ARGV[b + 9] ~= '' then
    local ok, e = pcall(cjson.decode, entry)
    if ok and type(e) == 'table' and type(e.cache_key) == 'string' then  -- else damaged: the caller withdraws it
      local models = '[]'
      if type(e.models_used) == 'table' and #e.models_used > 0 then models = cjson.encode(e.models_used) end
      redis.call('SET', KEYS[n + 6], ARGV[b + 9] .. '"cache_key":' .. cjson.encode(e.cache_key) ..
                 ',"models_used":' .. models .. '}', 'EX', ARGV[b + 10])
    end
  end
  return {0, 0, entry}
end
take(n, 2, grant)
redis.call('SET', KEYS[n + 5], string.format('%d', grant), 'EX', ARGV[b + 7])
hold(grant, math.ceil(grant * rate))
return {0, grant}
"""


@dataclass(frozen=True)
class Stale:
    """The overlay the caller checked against is not the one in force (nothing was counted): its value now ('':
    none)."""

    overlay: str


@dataclass(frozen=True)
class RecordHead:
    """A hit's record for feedback, written by the script: its key, its JSON up to the entry's fields (an object
    left open: `{...,` without the closing brace), its ttl."""

    key: str
    head: str
    ttl_s: int


@dataclass(frozen=True)
class Hit:
    """An exact repeat: the cached entry (raw JSON, moe_core.llm.exact_cache.ExactEntry) and the request's hold,
    counted and claimed; `Settlements.finish` with a decided claim settles it."""

    entry: str
    hold: Hold


class EdgeHits:
    def __init__(self, limiter: Limiter, settlements: Settlements) -> None:
        self.settlements = settlements
        self._script = limiter.redis.register_script(RESERVE_OR_HIT)

    async def reserve(self, counters: list[Counter], want: int, least: int, micros_per_token: float, *,
                      exact_key: str | None, response_id: str, hold: Hold, budget_ttl_s: int, hold_ttl_s: int,
                      due: float, record: RecordHead | None = None,
                      overlay: tuple[str, str] | None = None) -> Hit | Reservation | Stale:
        """The hit (counted, its hold decided and claimed, its `record` written) or the reservation (as
        Limiter.reserve), opened as the request's token budget with its hold (as Settlements.open); raises
        LimitExceeded naming the first limit without room, hit or not. exact_key: where the cached answer would be
        (None: nothing to look up). `hold` is the request's without its amounts (no tokens, no cost: a hit's as it
        is). overlay: (its key, the SHA-1 of its value as the caller shaped the request with it; '': no value):
        another value in force is `Stale`, with nothing done."""
        settle = self.settlements.key(response_id)
        keys = [c.key for c in counters] + [exact_key or settle, settle, f"{settle}:lease", self.settlements.index,
                                            self.settlements.budgets.key(response_id),
                                            record.key if record else settle, overlay[0] if overlay else settle]
        args: list[int | float | str] = [want, least, micros_per_token, len(counters)]
        for counter in counters:
            args += [counter.limit, counter.kind, counter.window.ttl_s]
        head, tail = _around_amounts(hold)
        args += [head, tail, hold.prompt, max(1, hold_ttl_s), due, response_id, round(LEASE_S * 1000),
                 max(1, budget_ttl_s), "0" if exact_key is None else "1", record.head if record else "",
                 max(1, record.ttl_s) if record else 1, overlay[1] if overlay else "-"]
        found = await self._script(keys=keys, args=args)
        refused, grant = int(found[0]), int(found[1])
        if refused < 0:
            raw = found[2]
            return Stale(raw.decode() if isinstance(raw, bytes) else str(raw))
        if refused:
            counter = counters[refused - 1]
            raise LimitExceeded(counter.scope, counter.limit_name, counter.window.retry_after_s)
        if len(found) > 2:
            entry = found[2]
            return Hit(entry.decode() if isinstance(entry, bytes) else str(entry), hold)
        return Reservation(counters, grant, math.ceil(grant * micros_per_token))


def _around_amounts(hold: Hold) -> tuple[str, str]:
    """The hold's JSON before and after its amounts (no tokens, no cost): the script writes the grant's between.
    A string field cannot hold AMOUNTS (its quotes would be escaped), so the split is the amounts' place."""
    assert hold.tokens == 0 and hold.cost_micros == 0
    head, tail = hold.model_dump_json().split(AMOUNTS)
    return head, tail
