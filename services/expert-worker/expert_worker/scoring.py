"""Learning from feedback: a Laplace-smoothed score per tenant x model x category, kept in Redis.

As in the original, ratings 1-2 count as negative, 4-5 as positive, and a 3 has no effect
(`count_neutral`, MOE_SCORE_COUNT_NEUTRAL, counts it as half positive, half negative instead):

    score = (positive + neutral / 2 + 1) / (ratings + 2)

Scores are per tenant: a tenant's ratings change that tenant's routing only. A global score (every
tenant) is changed only by admin-approved ratings (`Feedback.approved`, set by the gateway for an admin
key that asks for it). A model is skipped for a category when its tenant score or its global score is
under `score_min` after at least `score_min_ratings` ratings (never the last model of a category); the
others are tried best score first (`order`; a score with fewer ratings counts as the neutral 0.5; a tie
keeps the template order). Scores are permanent, as the original's (`half_life_s` 0); with a half-life
the counts behind a score decay, so old verdicts fade towards the neutral prior; the number of ratings
(`n`, the evidence) does not. A skipped model comes back when its score recovers.

Redis: `expert:tscore:<ns>:<tenant>:<category>:<model>` (a tenant's) and `expert:score:<ns>:<category>:<model>`
(global) hashes {pos, neg, neu, n, t}; `expert:rated:<ns>:<response_id>` marks a feedback as counted
(at-least-once delivery never counts one twice). All updates happen in one Lua script, so a crash cannot
count a rating without marking it or the other way round.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from moe_core.contracts import Feedback
from moe_core.llm.inference import ModelRef
from moe_core.llm.switches import expert_member, experts_key

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


def _scopes(tenant_id: str | None) -> list[str | None]:
    return [None, tenant_id] if tenant_id is not None else [None]


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
                 half_life_s: float, dedupe_ttl_s: int = 30 * 86400, count_neutral: bool = False,
                 order: bool = True) -> None:
        self.redis = redis
        self.prefix = f"expert:score:{namespace}"
        self.tenant_prefix = f"expert:tscore:{namespace}"
        self.namespace = namespace
        self.rated = f"expert:rated:{namespace}"
        self.min_score = min_score
        self.min_ratings = min_ratings
        self.half_life_s = half_life_s
        self.dedupe_ttl_s = dedupe_ttl_s
        self.count_neutral = count_neutral
        self.order = order

    def _key(self, category: str, model: str, tenant_id: str | None = None) -> str:
        if tenant_id is None:
            return f"{self.prefix}:{category}:{model}"
        return f"{self.tenant_prefix}:{tenant_id}:{category}:{model}"

    async def record(self, feedback: Feedback) -> bool:
        """Count one rating for every model x category of the answer in its tenant's scores (and in the global
        ones if an admin approved it); False if already counted."""
        uses = sorted({(u.category, u.model) for u in feedback.models_used})
        if not uses or (feedback.rating == 3 and not self.count_neutral):
            return False  # (a 3 has no effect, as in the original)
        scopes: list[str | None] = [feedback.tenant_id, *([None] if feedback.approved else [])]
        keys = [f"{self.rated}:{feedback.response_id}",
                *(self._key(c, m, scope) for scope in scopes for c, m in uses)]
        applied = await self.redis.eval(_APPLY, len(keys), *keys, str(time.time()), str(self.half_life_s),
                                        kind(feedback.rating), str(self.dedupe_ttl_s))
        return bool(applied)

    async def score(self, category: str, model: str, tenant_id: str | None = None) -> Score:
        """A tenant's score (tenant_id), or the global one (None)."""
        return self._parse(await self.redis.hgetall(self._key(category, model, tenant_id)), time.time())

    def _parse(self, raw: dict[Any, Any], now: float) -> Score:
        if not raw:
            return Score()
        stored = Score(float(raw.get("pos", 0)), float(raw.get("neg", 0)), float(raw.get("neu", 0)),
                       int(raw.get("n", 0)))
        return stored.decayed(now - float(raw.get("t", now)), self.half_life_s)

    def skipped(self, score: Score) -> bool:
        return score.n >= self.min_ratings and score.value < self.min_score

    def effective(self, score: Score) -> float:
        """The score routing goes by: its value after `min_ratings` ratings, else the neutral prior."""
        return score.value if score.n >= self.min_ratings else 0.5

    async def usable(self, category: str, refs: list[ModelRef], tenant_id: str | None = None) -> list[ModelRef]:
        """The refs whose model is neither disabled by an operator (moe_core.llm.switches) nor skipped for this
        category (by the global score, or by the tenant's own); all of them if every one would be. Best
        score first (the tenant's when it has enough ratings, else the global one), ties in template order.
        One Redis round trip: the operator's switches and the scores of every ref (also of a switched-off one)."""
        pipe = self.redis.pipeline(transaction=False)
        self.queue_reads(pipe, category, refs, tenant_id)
        return self.ranked(await pipe.execute(), category, refs, tenant_id)

    def queue_reads(self, pipe: Any, category: str, refs: list[ModelRef], tenant_id: str | None) -> None:
        """What `usable` reads, queued on a pipeline (the switches, then each ref's global and tenant score)."""
        pipe.smembers(experts_key(self.namespace))
        for ref in refs:
            for scope in _scopes(tenant_id):
                pipe.hgetall(self._key(category, ref.model, scope))

    def ranked(self, replies: list[Any], category: str, refs: list[ModelRef], tenant_id: str | None) -> list[ModelRef]:
        """`usable`'s answer from the replies of `queue_reads` (the last replies of the pipeline)."""
        width = len(_scopes(tenant_id))
        off, *raw = replies[len(replies) - 1 - width * len(refs):]
        now = time.time()
        every = [(ref, [self._parse(r, now) for r in raw[i * width:(i + 1) * width]]) for i, ref in enumerate(refs)]
        scored = [(ref, scores) for ref, scores in every if expert_member(category, ref.model) not in off] or every
        keep = [(ref, scores) for ref, scores in scored if not any(self.skipped(s) for s in scores)] or scored
        if self.order:
            keep = sorted(keep, key=lambda pair: -self._rank(pair[1]))
        return [ref for ref, _ in keep]

    def _rank(self, scores: list[Score]) -> float:
        """The tenant's score when it has the evidence, else the global one (scores: [global, tenant?])."""
        chosen = next((s for s in reversed(scores) if s.n >= self.min_ratings), scores[0])
        return self.effective(chosen)


@dataclass
class ScoresAhead:
    """A task's score reads sent ahead, in the pipeline that reads its stored outcome (Outcomes.once `also`):
    the routing of its models then needs no round trip of its own."""

    board: ScoreBoard
    category: str
    refs: list[ModelRef]
    tenant_id: str | None
    usable: list[ModelRef] | None = None  # set once the replies are in

    def queue(self, pipe: Any) -> Callable[[list[Any]], None]:
        self.board.queue_reads(pipe, self.category, self.refs, self.tenant_id)

        def take(replies: list[Any]) -> None:
            self.usable = self.board.ranked(replies, self.category, self.refs, self.tenant_id)

        return take
