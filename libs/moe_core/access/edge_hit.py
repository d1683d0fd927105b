"""The limits of a request that may be an exact repeat, and its cached answer, in one Redis round trip.

A question asked again word for word is answered at the edge (moe_core.exact_cache). Before, that cost the
reservation (moe_core.access.limits), the hold (moe_core.access.settlement) and the cached answer as three
round trips, and its settling two more before the reply. RESERVE_OR_HIT does it in one script: it checks every
counter of the key and its tenant exactly as RESERVE does (the same 429s: requests this minute, room for the
request's estimate in every token and cost limit), then reads the cached answer.
- A hit: the request is counted (requests +1; a hit uses no tokens and costs nothing, which is what reserving
  and settling it used to leave in the counters) and its hold is written already decided — usage `0 0 answered`,
  claimed by the caller (its lease) and indexed by when it is due — so that settling it after the reply is the
  usage event and `finish` (moe_core.access.settlement), and a replica that dies before that leaves it to the
  control plane's sweeper, which charges it the same, once.
- A miss: the tokens are reserved as RESERVE reserves them; the caller opens the hold and the budget as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from moe_core.access.limits import COUNTER_RULES, Counter, Limiter, LimitExceeded, Reservation
from moe_core.access.settlement import LEASE_S, Hold, Settlements

# KEYS: the n counters, then the cached answer, the hold, its lease, the due index. ARGV: tokens wanted, tokens
# at least, cost micros per token, n, (limit, kind, ttl) per counter, then hold json, prompt estimate, hold ttl,
# due, response id, lease ms. Returns {refused counter, 0} | {0, grant} (a miss, reserved) | {0, 0, entry} (a hit).
RESERVE_OR_HIT = COUNTER_RULES + """
local n = tonumber(ARGV[4])
local refused, grant = check(n, 2)
if refused > 0 then return {refused, 0} end
local entry = redis.call('GET', KEYS[n + 1])
if entry then
  for i = 1, n do
    if ARGV[3 * i + 3] == 'requests' then
      redis.call('INCRBY', KEYS[i], 1)
      if redis.call('TTL', KEYS[i]) < 0 then redis.call('EXPIRE', KEYS[i], ARGV[3 * i + 4]) end
    end
  end
  local b = 3 * n + 5
  redis.call('DEL', KEYS[n + 2])
  redis.call('HSET', KEYS[n + 2], 'hold', ARGV[b], 'tokens', '0', 'prompt', ARGV[b + 1], 'usage', '0 0 answered')
  redis.call('EXPIRE', KEYS[n + 2], ARGV[b + 2])
  redis.call('SET', KEYS[n + 3], '1', 'PX', ARGV[b + 5])
  redis.call('ZADD', KEYS[n + 4], ARGV[b + 3], ARGV[b + 4])
  return {0, 0, entry}
end
take(n, 2, grant)
return {0, grant}
"""


@dataclass(frozen=True)
class Hit:
    """An exact repeat: the cached entry (raw JSON, moe_core.exact_cache.ExactEntry) and the request's hold,
    counted and claimed; `Settlements.finish` with a decided claim settles it."""

    entry: str
    hold: Hold


class EdgeHits:
    def __init__(self, limiter: Limiter, settlements: Settlements) -> None:
        self.settlements = settlements
        self._script = limiter.redis.register_script(RESERVE_OR_HIT)

    async def reserve(self, counters: list[Counter], want: int, least: int, micros_per_token: float, *,
                      exact_key: str, response_id: str, hold: Hold, hold_ttl_s: int, due: float) -> Hit | Reservation:
        """The hit (counted, its hold decided and claimed) or the miss's reservation (as Limiter.reserve); raises
        LimitExceeded naming the first limit without room, hit or not. `hold` is the hit's: no tokens, no cost."""
        settle = self.settlements.key(response_id)
        keys = [c.key for c in counters] + [exact_key, settle, f"{settle}:lease", self.settlements.index]
        args: list[int | float | str] = [want, least, micros_per_token, len(counters)]
        for counter in counters:
            args += [counter.limit, counter.kind, counter.window.ttl_s]
        args += [hold.model_dump_json(), hold.prompt, max(1, hold_ttl_s), due, response_id, round(LEASE_S * 1000)]
        found = await self._script(keys=keys, args=args)
        refused, grant = int(found[0]), int(found[1])
        if refused:
            counter = counters[refused - 1]
            raise LimitExceeded(counter.scope, counter.limit_name, counter.window.retry_after_s)
        if len(found) > 2:
            entry = found[2]
            return Hit(entry.decode() if isinstance(entry, bytes) else str(entry), hold)
        return Reservation(counters, grant, math.ceil(grant * micros_per_token))
