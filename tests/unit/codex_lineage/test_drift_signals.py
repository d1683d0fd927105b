"""The cache and score drift checks (pure): each flag at its threshold, the ladder, nothing to judge as info."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from codex_lineage.drift.signals import CacheCounts, Ratings, SignalSettings, cache_check, score_check

pytestmark = pytest.mark.unit
CFG = SignalSettings()
NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


def _ratings(pos: int, neg: int, hours_ago: float = 1, neutral: int = 0) -> Ratings:
    r = Ratings()
    for rating in [5] * pos + [1] * neg + [3] * neutral:
        r.add(rating, NOW - timedelta(hours=hours_ago))
    return r


def test_false_hits_warn_then_crit_and_need_enough_ratings() -> None:
    assert cache_check(CacheCounts(0, 0, 0, 0), CacheCounts(), CFG)["severity"] == "info"
    assert cache_check(CacheCounts(10, 4, 2, 2), CacheCounts(), CFG)["flags"] == []  # 2 rated: too few
    warn = cache_check(CacheCounts(10, 4, 4, 2), CacheCounts(), CFG)  # 0.5: >= 0.3, < 0.6
    assert (warn["severity"], warn["flags"]) == ("warn", ["cache_false_hits"])
    crit = cache_check(CacheCounts(10, 4, 4, 3), CacheCounts(), CFG)
    assert (crit["severity"], crit["window"]["false_hit_rate"]) == ("crit", 0.75)
    assert cache_check(CacheCounts(10, 4, 4, 1), CacheCounts(), CFG)["severity"] == "ok"  # 0.25


def test_hit_rate_drop_against_the_baseline() -> None:
    drop = cache_check(CacheCounts(10, 3), CacheCounts(10, 8), CFG)
    assert (drop["severity"], drop["flags"]) == ("warn", ["cache_hit_rate_drop"])
    assert cache_check(CacheCounts(10, 5), CacheCounts(10, 8), CFG)["flags"] == []  # 0.5 >= 0.4
    assert cache_check(CacheCounts(9, 0), CacheCounts(10, 8), CFG)["flags"] == []  # too few answers


def test_score_drop_and_stale() -> None:
    crit = score_check(_ratings(0, 4), _ratings(4, 0, 30), NOW, CFG)
    assert (crit["severity"], crit["flags"]) == ("crit", ["score_drop"])
    warn = score_check(_ratings(2, 2), _ratings(4, 0, 30), NOW, CFG)  # 0.833 -> 0.5
    assert (warn["severity"], warn["flags"]) == ("warn", ["score_drop"])
    assert score_check(_ratings(0, 2), _ratings(4, 0, 30), NOW, CFG)["flags"] == []  # 2 ratings: too few
    stale = score_check(Ratings(), _ratings(3, 0, 100), NOW, CFG)
    assert (stale["severity"], stale["flags"], stale["window"]["score"]) == ("warn", ["score_stale"], None)
    assert score_check(Ratings(), _ratings(3, 0, 50), NOW, CFG)["severity"] == "ok"
    assert score_check(Ratings(), Ratings(), NOW, CFG)["severity"] == "info"
    assert _ratings(1, 0, neutral=4).n == 1  # a 3 has no effect, as in expert-worker's default
