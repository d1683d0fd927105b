"""The trust formula and the decay rule (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moe_core.knowledge.graph.trust import DAY_S, TrustPolicy, extraction_confidence

pytestmark = pytest.mark.unit
POLICY = TrustPolicy()  # the original's: weights 1.0 / 0.9 / 0.6, max(0.3, 1 - days/365), 1.5 x
NOW = 1_000_000_000.0


def test_trust_is_confidence_times_source_weight_times_decay_times_verified_bonus() -> None:
    fresh = POLICY.trust(confidence=0.8, source="extracted", asserted_at=NOW, verified=False, now=NOW)
    assert fresh == pytest.approx(0.8 * 0.6)
    aged = POLICY.trust(confidence=0.8, source="extracted", asserted_at=NOW - 73 * DAY_S, verified=False, now=NOW)
    assert aged == pytest.approx(0.8 * 0.6 * 0.8)  # 1 - 73/365
    verified = POLICY.trust(confidence=0.8, source="extracted", asserted_at=NOW - 73 * DAY_S, verified=True, now=NOW)
    assert verified == pytest.approx(0.8 * 0.6 * 0.8 * 1.5)
    healer = POLICY.trust(confidence=1.0, source="gap_healer", asserted_at=NOW, verified=False, now=NOW)
    assert healer == pytest.approx(0.9)


def test_decay_is_linear_over_a_year_and_never_below_its_minimum() -> None:
    assert POLICY.decay(0) == 1.0
    assert POLICY.decay(182.5 * DAY_S) == pytest.approx(0.5)
    assert POLICY.decay(300 * DAY_S) == pytest.approx(0.3)  # 1 - 300/365 = 0.18, floored
    assert POLICY.decay(10_000 * DAY_S) == pytest.approx(0.3)
    assert TrustPolicy(decay_days=0).decay(1e12) == 1.0


def test_a_verified_learned_fact_stays_retrievable_however_old() -> None:
    """The issue's case: 0.5 from a medium answer, user-verified, years old, still above the lint floor."""
    old = POLICY.trust(confidence=0.425, source="extracted", asserted_at=NOW - 3 * 365 * DAY_S, verified=True,
                       now=NOW)
    assert old == pytest.approx(0.425 * 0.6 * 0.3 * 1.5)
    assert not POLICY.decayed(trust=old, verified=True, assertions=1, source="extracted")


def test_the_ontology_decays_too_and_trust_is_capped() -> None:
    old = POLICY.trust(confidence=1.0, source="ontology", asserted_at=NOW - 10_000 * DAY_S, verified=False, now=NOW)
    assert old == pytest.approx(0.3)
    assert POLICY.trust(confidence=1.0, source="ontology", asserted_at=NOW, verified=True, now=NOW) == 1.0
    future = POLICY.trust(confidence=0.5, source="extracted", asserted_at=NOW + DAY_S, verified=False, now=NOW)
    assert future == pytest.approx(0.3)  # a clock skew never raises trust above the fresh value


@pytest.mark.parametrize("trust, verified, assertions, source, expected", [
    (0.19, False, 1, "extracted", True),
    (0.19, False, 1, "gap_healer", True),
    (0.20, False, 1, "extracted", False),  # not below the floor
    (0.19, True, 1, "extracted", False),  # verified by a user
    (0.19, False, 2, "extracted", False),  # asserted twice
    (0.19, False, 1, "ontology", False),  # curated knowledge is never decayed away
])
def test_the_decay_rule(trust: float, verified: bool, assertions: int, source: str, expected: bool) -> None:
    assert POLICY.decayed(trust=trust, verified=verified, assertions=assertions, source=source) is expected


@given(confidence=st.floats(-1, 2, allow_nan=False), age=st.floats(0, 1e9), later=st.floats(0, 1e9),
       source=st.sampled_from(["ontology", "extracted", "gap_healer", "unknown"]), verified=st.booleans())
def test_trust_stays_in_range_and_never_grows_with_age(confidence: float, age: float, later: float, source: str,
                                                       verified: bool) -> None:
    young = POLICY.trust(confidence=confidence, source=source, asserted_at=NOW - age, verified=verified, now=NOW)
    old = POLICY.trust(confidence=confidence, source=source, asserted_at=NOW - age - later, verified=verified, now=NOW)
    assert 0.0 <= old <= young <= 1.0


def test_extraction_confidence_follows_the_answer_confidence() -> None:
    assert extraction_confidence(0.9, "high") == pytest.approx(0.9)
    assert extraction_confidence(0.9, "low") == pytest.approx(0.54)
    assert extraction_confidence(3.0, "medium") == pytest.approx(0.85)
