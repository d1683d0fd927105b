"""Learned planner patterns in real Redis (planner.learned_patterns, the original's moe:planner_success): a
rating of 4 or 5 teaches the answer's expert combination once per answer; other ratings, the critic's verdicts and
answers no expert wrote teach nothing; a combination with no success for 180 days is forgotten; the most
successful ones reach the planner model's prompt and GET /v1/admin/planner-patterns' reader; a tenant's ratings
teach its own patterns only."""

from __future__ import annotations

import time

import pytest
from redis.asyncio import Redis

from control_plane.ops.patterns import learned_patterns
from moe_core.contracts import Feedback, ModelUse, deadline_in
from planner import core
from planner.learned_patterns import DAY_S, LearnedPatterns
from planner.settings import PlannerSettings

pytestmark = pytest.mark.infra
LEGAL_MEDICAL = [ModelUse(model="m1", category="medical_consult"), ModelUse(model="m2", category="legal_advisor"),
                 ModelUse(model="m3", category="medical_consult")]


def _feedback(rid: str, rating: int, uses: list[ModelUse], source: str = "user", tenant: str = "t") -> Feedback:
    return Feedback(response_id=rid, tenant_id=tenant, deadline_at=deadline_in(60), rating=rating, models_used=uses,
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
    top = await patterns.top("t", 3)
    assert [(r.pattern, r.successes) for r in top] == [("legal_advisor+medical_consult", 2), ("general", 1)]

    hints = await patterns.hints("t", PlannerSettings().planner_learned_patterns)
    system = core.planner_messages("Can my employer see my diagnosis?", ["general"], 4, learned=hints)[0]["content"]
    assert "Well-rated combinations (reuse one that fits): legal_advisor+medical_consult, general." in system
    assert "answered well" not in core.planner_messages("q", ["general"], 4)[0]["content"]  # nothing learned
    assert await patterns.hints("t", 0) == []

    listed = await learned_patterns(redis, namespace, 10)
    assert [(r["pattern"], r["successes"]) for r in listed] == [(["legal_advisor", "medical_consult"], 2),
                                                                (["general"], 1)]
    assert [r["pattern"] for r in await learned_patterns(redis, namespace, 10, "general")] == [["general"]]


async def test_a_combination_with_no_success_for_180_days_is_forgotten(redis: Redis, namespace: str) -> None:
    patterns = LearnedPatterns(redis, namespace, 180)
    now = time.time()
    await patterns.record(_feedback("old", 5, [ModelUse(model="m", category="math")]), now=now - 181 * DAY_S)
    await patterns.record(_feedback("kept", 5, LEGAL_MEDICAL), now=now - 179 * DAY_S)
    assert [r.pattern for r in await patterns.top("t", 5, now=now)] == ["legal_advisor+medical_consult"]
    assert await patterns.forget_old("t", now) == ["math"]
    assert await redis.hkeys(patterns.counts("t")) == ["legal_advisor+medical_consult"]
    await patterns.record(_feedback("new", 4, LEGAL_MEDICAL), now=now)  # a success renews it
    assert [(r.successes, r.last_success) for r in await patterns.top("t", 5, now=now + 100 * DAY_S)] == [(2, now)]


async def test_a_tenants_ratings_teach_its_own_patterns_only(redis: Redis, namespace: str) -> None:
    patterns = LearnedPatterns(redis, namespace, 180, refresh_s=3600)  # hints read once per tenant and kept
    assert await patterns.hints("tenant-a", 3) == [] and await patterns.hints("tenant-b", 3) == []
    assert await patterns.record(_feedback("a1", 5, LEGAL_MEDICAL, tenant="tenant-a"))
    assert await patterns.record(_feedback("b1", 4, [ModelUse(model="m", category="math")], tenant="tenant-b"))
    assert await patterns.hints("tenant-a", 3) == ["legal_advisor+medical_consult"]  # its cache was refreshed
    assert await patterns.hints("tenant-b", 3) == ["math"]
    assert await patterns.hints("tenant-c", 3) == []
    # the admin reader: one tenant's, a tenant admin's tenants, or every tenant's (successes summed)
    assert [r["pattern"] for r in await learned_patterns(redis, namespace, 10, tenants=["tenant-a"])] == [
        ["legal_advisor", "medical_consult"]]
    await patterns.record(_feedback("b2", 5, LEGAL_MEDICAL, tenant="tenant-b"))
    every = {tuple(r["pattern"]): (r["successes"], r["tenants"]) for r in await learned_patterns(redis, namespace, 10)}
    assert every == {("legal_advisor", "medical_consult"): (2, ["tenant-a", "tenant-b"]), ("math",): (1, ["tenant-b"])}
