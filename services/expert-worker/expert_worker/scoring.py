"""Learning from feedback: a Laplace-smoothed score per tenant x model x category, kept in Redis.

Ratings 1-2 count as negative, 3 as neutral (half positive, half negative), 4-5 as positive:

    score = (positive + neutral / 2 + 1) / (ratings + 2)

Scores are per tenant: a tenant's ratings change that tenant's routing only. A global score (every
tenant) is changed only by admin-approved ratings (`Feedback.approved`, set by the gateway for an admin
key that asks for it). A model is skipped for a category when its tenant score or its global score is
under `score_min` after at least `score_min_ratings` ratings (never the last model of a category). The
counts behind a score decay with a half-life, so old verdicts fade towards the neutral prior; the number
of ratings (`n`, the evidence) does not. A skipped model comes back when its score recovers.

Redis: `expert:tscore:<ns>:<tenant>:<category>:<model>` (a tenant's) and `expert:score:<ns>:<category>:<model>`
(global) hashes {pos, neg, neu, n, t}; `expert:rated:<ns>:<response_id>` marks a feedback as counted
(at-least-once delivery never counts one twice). All updates happen in one Lua script, so a crash cannot
count a rating without marking it or the other way round.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from redis.asyncio import Redis

from moe_core.contracts import Feedback
from moe_core.inference import ModelRef
from moe_core.switches import expert_member, experts_key

_APPLY = """
local now, half_life, field, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ttl) == false then return 0 end
for i = 2, #KEYS do
  local t = tonumber(redis.call('HGET', KEYS[i], 't') or now)
  local factor = 1
  if half_life > 0 then factor = math.pow(0.5, math.max(now - t, 0) / half_life) end
  for _, name in ipairs({'pos', 'neg', 'neu'}) do
    local value = tonumber(redis.call('HGET', KEYS[i], name) or '0') * factor
    if name == field then value = value + 1 end
    redis.call('HSET', KEYS[i], name, tostring(value))
  end
  redis.call('HSET', KEYS[i], 't', tostring(now))
  redis.call('HINCRBY', KEYS[i], 'n', 1)
end
return 1
"""


def kind(rating: int) -> str:
    return "neg" if rating <= 2 else "neu" if rating == 3 else "pos"


@dataclass(frozen=True)
class Score:
    pos: float = 0.0
    neg: float = 0.0
    neu: float = 0.0
    n: int = 0  # ratings ever counted (not decayed)

    @property
    def weight(self) -> float:
        return self.pos + self.neg + self.neu

    @property
    def value(self) -> float:
        return (self.pos + self.neu / 2 + 1) / (self.weight + 2)

    def decayed(self, age_s: float, half_life_s: float) -> Score:
        if half_life_s <= 0 or age_s <= 0:
            return self
        factor = 0.5 ** (age_s / half_life_s)
        return Score(self.pos * factor, self.neg * factor, self.neu * factor, self.n)


class ScoreBoard:
    def __init__(self, redis: Redis, namespace: str, *, min_score: float, min_ratings: int,
                 half_life_s: float, dedupe_ttl_s: int = 30 * 86400) -> None:
        self.redis = redis
        self.prefix = f"expert:score:{namespace}"
        self.tenant_prefix = f"expert:tscore:{namespace}"
        self.namespace = namespace
        self.rated = f"expert:rated:{namespace}"
        self.min_score = min_score
        self.min_ratings = min_ratings
        self.half_life_s = half_life_s
        self.dedupe_ttl_s = dedupe_ttl_s

    def _key(self, category: str, model: str, tenant_id: str | None = None) -> str:
        if tenant_id is None:
            return f"{self.prefix}:{category}:{model}"
        return f"{self.tenant_prefix}:{tenant_id}:{category}:{model}"

    async def record(self, feedback: Feedback) -> bool:
        """Count one rating for every model x category of the answer in its tenant's scores (and in the global
        ones if an admin approved it); False if already counted."""
        uses = sorted({(u.category, u.model) for u in feedback.models_used})
        if not uses:
            return False
        scopes: list[str | None] = [feedback.tenant_id, *([None] if feedback.approved else [])]
        keys = [f"{self.rated}:{feedback.response_id}",
                *(self._key(c, m, scope) for scope in scopes for c, m in uses)]
        applied = await self.redis.eval(_APPLY, len(keys), *keys, str(time.time()), str(self.half_life_s),
                                        kind(feedback.rating), str(self.dedupe_ttl_s))
        return bool(applied)

    async def score(self, category: str, model: str, tenant_id: str | None = None) -> Score:
        """A tenant's score (tenant_id), or the global one (None)."""
        raw = await self.redis.hgetall(self._key(category, model, tenant_id))
        if not raw:
            return Score()
        stored = Score(float(raw.get("pos", 0)), float(raw.get("neg", 0)), float(raw.get("neu", 0)),
                       int(raw.get("n", 0)))
        return stored.decayed(time.time() - float(raw.get("t", time.time())), self.half_life_s)

    def skipped(self, score: Score) -> bool:
        return score.n >= self.min_ratings and score.value < self.min_score

    async def usable(self, category: str, refs: list[ModelRef], tenant_id: str | None = None) -> list[ModelRef]:
        """The refs whose model is neither disabled by an operator (moe_core.switches) nor skipped for this
        category (by the global score, or by the tenant's own); all of them if every one would be."""
        off = await self.redis.smembers(experts_key(self.namespace))
        enabled = [ref for ref in refs if expert_member(category, ref.model) not in off] or refs
        scopes = [None, tenant_id] if tenant_id is not None else [None]
        keep = [ref for ref in enabled
                if not any([self.skipped(await self.score(category, ref.model, s)) for s in scopes])]
        return keep or enabled
