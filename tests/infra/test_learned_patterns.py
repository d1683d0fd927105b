"""Learned planner patterns in real Redis (planner.learned_patterns, the original's moe:planner_success): a
rating of 4 or 5 teaches the answer's expert combination once per answer; other ratings, the critic's verdicts and
answers no expert wrote teach nothing; a combination with no success for 180 days is forgotten; the most
successful ones reach the planner model's prompt and GET /v1/admin/planner-patterns' reader."""

from __future__ import annotations

import time

import pytest
from redis.asyncio import Redis

from control_plane.ops_patterns import learned_patterns
from moe_core.contracts import Feedback, ModelUse, deadline_in
from planner import core
from planner.learned_patterns import DAY_S, LearnedPatterns
from planner.settings import PlannerSettings

pytestmark = pytest.mark.infra
LEGAL_MEDICAL = [ModelUse(model="m1", category="medical_consult"), ModelUse(model="m2", category="legal_advisor"),
                 ModelUse(model="m3", category="medical_consult")]


def _feedback(rid: str, rating: int, uses: list[ModelUse], source: str = "user") -> Feedback:
    return Feedback(response_id=rid, tenant_id="t", deadline_at=deadline_in(60), rating=rating, models_used=uses,
                    source=source)  # type: ignore[arg-type]


async def test_well_rated_combinations_are_learned_once_and_offered_to_the_planner(redis: Redis,
                                                                                   namespace: str) -> None:
    patterns = LearnedPatterns(redis, namespace, PlannerSettings().planner_patterns_retention_days)
    general = [ModelUse(model="m1", category="general")]
    taught = [await patterns.record(f) for f in (
        _feedback("r1", 5, LEGAL_MEDICAL), _feedback("r2", 4, LEGAL_MEDICAL), _feedback("r3", 4, general),
        _feedback("r1", 5, LEGAL_MEDICAL),  # the same answer again (a redelivery): once
        _feedback("r4", 3, general), _feedback("r5", 2, LEGAL_MEDICAL),  # a 3 or worse teaches nothing
        _feedback("r6", 5, general, source="critic"), _feedback("r7", 5, []))]  # no expert answered
    assert taught == [True, True, True, False, False, False, False, False]
    top = await patterns.top(3)
    assert [(r.pattern, r.successes) for r in top] == [("legal_advisor+medical_consult", 2), ("general", 1)]

    hints = await patterns.hints(PlannerSettings().planner_learned_patterns)
    system = core.planner_messages("Can my employer see my diagnosis?", ["general"], 4, learned=hints)[0]["content"]
    assert "answered well before (reuse one that fits): legal_advisor+medical_consult, general." in system
    assert "answered well" not in core.planner_messages("q", ["general"], 4)[0]["content"]  # nothing learned
    assert await patterns.hints(0) == []

    listed = await learned_patterns(redis, namespace, 10)
    assert [(r["pattern"], r["successes"]) for r in listed] == [(["legal_advisor", "medical_consult"], 2),
                                                                (["general"], 1)]
    assert [r["pattern"] for r in await learned_patterns(redis, namespace, 10, "general")] == [["general"]]


async def test_a_combination_with_no_success_for_180_days_is_forgotten(redis: Redis, namespace: str) -> None:
    patterns = LearnedPatterns(redis, namespace, 180)
    now = time.time()
    await patterns.record(_feedback("old", 5, [ModelUse(model="m", category="math")]), now=now - 181 * DAY_S)
    await patterns.record(_feedback("kept", 5, LEGAL_MEDICAL), now=now - 179 * DAY_S)
    assert [r.pattern for r in await patterns.top(5, now=now)] == ["legal_advisor+medical_consult"]
    assert await patterns.forget_old(now) == ["math"]
    assert await redis.hkeys(patterns.counts) == ["legal_advisor+medical_consult"]
    await patterns.record(_feedback("new", 4, LEGAL_MEDICAL), now=now)  # a success renews it
    assert [(r.successes, r.last_success) for r in await patterns.top(5, now=now + 100 * DAY_S)] == [(2, now)]
