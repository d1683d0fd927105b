"""Feedback scores per model x category in real Redis: Laplace smoothing, skip and recovery, dedupe, decay."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from expert_worker.scoring import Score, ScoreBoard, kind
from moe_core.contracts import Feedback, ModelUse, deadline_in
from moe_core.llm.inference import ModelRef

pytestmark = pytest.mark.unit


def test_laplace_smoothed_score() -> None:
    assert Score().value == 0.5  # no evidence: neutral
    assert Score(neg=5).value == pytest.approx(1 / 7)
    assert Score(pos=3, neg=1).value == pytest.approx(4 / 6)
    assert Score(neu=2).value == 0.5  # neutral ratings keep it neutral
    assert [kind(r) for r in (1, 2, 3, 4, 5)] == ["neg", "neg", "neu", "pos", "pos"]
    assert Score(pos=4, neg=4, n=8).decayed(age_s=10, half_life_s=10) == Score(pos=2, neg=2, n=8)


def _feedback(rid: str, rating: int, *uses: tuple[str, str], tenant: str = "t", approved: bool = False) -> Feedback:
    return Feedback(response_id=rid, tenant_id=tenant, deadline_at=deadline_in(60), rating=rating,
                    models_used=[ModelUse(model=m, category=c) for m, c in uses], approved=approved)


@pytest.mark.infra  # real stores
async def test_a_bad_model_is_skipped_then_comes_back_when_its_score_recovers(redis: Redis, namespace: str) -> None:
    board = ScoreBoard(redis, namespace, min_score=0.3, min_ratings=3, half_life_s=0)
    refs = [ModelRef(model="m1"), ModelRef(model="m2")]
    for i in range(2):
        await board.record(_feedback(f"{namespace}-n{i}", 1, ("m1", "math")))
    assert await board.usable("math", refs, "t") == refs  # 2 ratings: not enough evidence yet
    await board.record(_feedback(f"{namespace}-n2", 2, ("m1", "math")))
    assert (await board.score("math", "m1", "t")).value == pytest.approx(1 / 5)
    assert await board.usable("math", refs, "t") == refs[1:]  # skipped for math ...
    assert await board.usable("science", refs, "t") == refs  # ... only for math
    for i in range(2):  # later ratings of its earlier answers are good
        await board.record(_feedback(f"{namespace}-p{i}", 5, ("m1", "math")))
    assert (await board.score("math", "m1", "t")).value == pytest.approx(3 / 7)
    assert await board.usable("math", refs, "t") == refs[::-1]  # back, after m2 (no evidence: 0.5 > 3/7)


@pytest.mark.infra  # real stores
async def test_each_feedback_counts_once_for_every_model_of_the_answer(redis: Redis, namespace: str) -> None:
    board = ScoreBoard(redis, namespace, min_score=0.3, min_ratings=3, half_life_s=0)
    feedback = _feedback(f"{namespace}-r", 4, ("m1", "math"), ("m2", "science"), ("m1", "math"))
    assert await board.record(feedback) is True
    assert await board.record(feedback) is False  # redelivered: not counted again
    assert await board.score("math", "m1", "t") == Score(pos=1, n=1)
    assert await board.score("science", "m2", "t") == Score(pos=1, n=1)
    assert await board.record(_feedback(f"{namespace}-none", 1)) is False  # no model: nothing to score


@pytest.mark.infra  # real stores
async def test_never_every_model_of_a_category_is_skipped(redis: Redis, namespace: str) -> None:
    board = ScoreBoard(redis, namespace, min_score=0.3, min_ratings=1, half_life_s=0)
    await board.record(_feedback(f"{namespace}-x", 1, ("only", "math")))
    assert await board.usable("math", [ModelRef(model="only")], "t") == [ModelRef(model="only")]


@pytest.mark.infra  # real stores
async def test_old_ratings_fade_with_the_half_life(redis: Redis, namespace: str) -> None:
    board = ScoreBoard(redis, namespace, min_score=0.3, min_ratings=3, half_life_s=3600)
    for i in range(4):
        await board.record(_feedback(f"{namespace}-d{i}", 1, ("m1", "math")))
    assert board.skipped(await board.score("math", "m1", "t"))
    key = f"expert:tscore:{namespace}:t:math:m1"
    await redis.hset(key, "t", str(float(await redis.hget(key, "t")) - 7200))  # the ratings are two hours old
    faded = await board.score("math", "m1", "t")
    assert faded.neg == pytest.approx(1.0, rel=1e-3)  # 4 -> 1 after two half-lives: the score recovers ...
    assert faded.n == 4 and faded.value == pytest.approx(1 / 3, rel=1e-3) and not board.skipped(faded)
    await board.record(_feedback(f"{namespace}-d9", 1, ("m1", "math")))  # a new rating decays the old ones first
    fresh = await board.score("math", "m1", "t")
    assert fresh.neg == pytest.approx(2.0, rel=1e-3) and fresh.n == 5 and board.skipped(fresh)


@pytest.mark.infra  # real stores
async def test_a_tenants_ratings_change_its_own_routing_only_approved_ones_everyones(
        redis: Redis, namespace: str) -> None:
    board = ScoreBoard(redis, namespace, min_score=0.3, min_ratings=3, half_life_s=0)
    refs = [ModelRef(model="m1"), ModelRef(model="m2")]
    for i in range(3):
        await board.record(_feedback(f"{namespace}-a{i}", 1, ("m1", "math"), tenant="a"))
    assert await board.usable("math", refs, "a") == refs[1:]
    assert await board.usable("math", refs, "b") == refs  # tenant b is not affected ...
    assert await board.score("math", "m1") == Score()  # ... nor the global score
    for i in range(3):  # an admin approved these as global signals
        await board.record(_feedback(f"{namespace}-g{i}", 1, ("m2", "math"), tenant="a", approved=True))
    assert (await board.score("math", "m2")).n == 3 and (await board.score("math", "m2", "a")).n == 3
    assert await board.usable("math", refs, "b") == refs[:1]


@pytest.mark.infra  # real stores
async def test_a_rating_of_three_has_no_effect_as_in_the_original(redis: Redis, namespace: str) -> None:
    board = ScoreBoard(redis, namespace, min_score=0.3, min_ratings=1, half_life_s=0)
    assert await board.record(_feedback(f"{namespace}-3", 3, ("m1", "math"))) is False
    assert await board.score("math", "m1", "t") == Score()
    counting = ScoreBoard(redis, namespace, min_score=0.3, min_ratings=1, half_life_s=0, count_neutral=True)
    assert await counting.record(_feedback(f"{namespace}-3b", 3, ("m1", "math"))) is True
    assert await counting.score("math", "m1", "t") == Score(neu=1, n=1)


@pytest.mark.infra  # real stores
async def test_models_are_tried_best_score_first(redis: Redis, namespace: str) -> None:
    board = ScoreBoard(redis, namespace, min_score=0.3, min_ratings=2, half_life_s=0)
    refs = [ModelRef(model="m1"), ModelRef(model="m2"), ModelRef(model="m3")]
    assert await board.usable("math", refs, "t") == refs  # no evidence: the template order
    for i in range(2):
        await board.record(_feedback(f"{namespace}-o{i}", 5, ("m3", "math")))
        await board.record(_feedback(f"{namespace}-q{i}", 4 if i else 2, ("m1", "math")))
    # m3: 3/4, m2: no evidence (0.5), m1: one good one bad -> 2/4 = 0.5 (a tie keeps the template order)
    assert [r.model for r in await board.usable("math", refs, "t")] == ["m3", "m1", "m2"]
    unordered = ScoreBoard(redis, namespace, min_score=0.3, min_ratings=2, half_life_s=0, order=False)
    assert await unordered.usable("math", refs, "t") == refs
