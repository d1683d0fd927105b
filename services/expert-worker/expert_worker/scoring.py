"""Learning from feedback: a Laplace-smoothed score per model x category, kept in Redis.

Ratings 1-2 count as negative, 3 as neutral (half positive, half negative), 4-5 as positive:

    score = (positive + neutral / 2 + 1) / (ratings + 2)

A model whose score is under `score_min` after at least `score_min_ratings` ratings is skipped for that
category (never the last model of a category). The counts behind the score decay with a half-life, so old
verdicts fade towards the neutral prior; the number of ratings (`n`, the evidence) does not. A skipped
model comes back when its score recovers (later ratings of its earlier answers, or decay).

Redis: `expert:score:<ns>:<category>:<model>` hash {pos, neg, neu, n, t}; `expert:rated:<ns>:<response_id>`
marks a feedback as counted (at-least-once delivery never counts one twice). Both updates happen in one
Lua script, so a crash cannot count a rating without marking it or the other way round.
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
        self.namespace = namespace
        self.rated = f"expert:rated:{namespace}"
        self.min_score = min_score
        self.min_ratings = min_ratings
        self.half_life_s = half_life_s
        self.dedupe_ttl_s = dedupe_ttl_s

    def _key(self, category: str, model: str) -> str:
        return f"{self.prefix}:{category}:{model}"

    async def record(self, feedback: Feedback) -> bool:
        """Count one rating for every model x category of the answer; False if already counted."""
        uses = sorted({(u.category, u.model) for u in feedback.models_used})
        if not uses:
            return False
        keys = [f"{self.rated}:{feedback.response_id}", *(self._key(c, m) for c, m in uses)]
        applied = await self.redis.eval(_APPLY, len(keys), *keys, str(time.time()), str(self.half_life_s),
                                        kind(feedback.rating), str(self.dedupe_ttl_s))
        return bool(applied)

    async def score(self, category: str, model: str) -> Score:
        raw = await self.redis.hgetall(self._key(category, model))
        if not raw:
            return Score()
        stored = Score(float(raw.get("pos", 0)), float(raw.get("neg", 0)), float(raw.get("neu", 0)),
                       int(raw.get("n", 0)))
        return stored.decayed(time.time() - float(raw.get("t", time.time())), self.half_life_s)

    def skipped(self, score: Score) -> bool:
        return score.n >= self.min_ratings and score.value < self.min_score

    async def usable(self, category: str, refs: list[ModelRef]) -> list[ModelRef]:
        """The refs whose model is neither disabled by an operator (moe_core.switches) nor skipped for this
        category; all of them if every one would be."""
        off = await self.redis.smembers(experts_key(self.namespace))
        enabled = [ref for ref in refs if expert_member(category, ref.model) not in off] or refs
        keep = [ref for ref in enabled if not self.skipped(await self.score(category, ref.model))]
        return keep or enabled
