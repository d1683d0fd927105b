"""Drift checks over the semantic cache and the experts' scores (pure), on the ladder ok < info < warn < crit.

A check compares one **window** (the last `window_h` hours) with its **baseline** (the `baseline_h` hours
before it):

| flag | raised when | severity |
|---|---|---|
| cache_false_hits | >= `min_ratings` rated cache hits in the window, >= `false_hit_rate` of them 1-2| warn (2x: crit) |
| cache_hit_rate_drop | hit rate < (1 - `hit_rate_drop`) x the baseline's (`min_answers` answers each) | warn |
| score_drop | a model's score for a category fell by `score_drop` (`min_ratings` each side) | warn (2x: crit) |
| score_stale | a model x category rated in the baseline, not rated for `score_stale_h` hours | warn |

Scores are computed as expert-worker computes them (`(positive + 1) / (ratings + 2)`, a 3 has no effect).
Nothing to judge (no answer, no rating) is `info`; judged without a flag, `ok`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from codex_lineage.drift.flags import worst

CACHE_FLAGS = ("cache_false_hits", "cache_hit_rate_drop")
SCORE_FLAGS = ("score_drop", "score_stale")


@dataclass(frozen=True)
class SignalSettings:
    baseline_h: float = 168.0
    min_ratings: int = 3
    false_hit_rate: float = 0.3
    hit_rate_drop: float = 0.5
    min_answers: int = 10
    score_drop: float = 0.25
    score_stale_h: float = 72.0


@dataclass
class CacheCounts:
    answers: int = 0
    hits: int = 0
    rated_hits: int = 0
    false_hits: int = 0

    def view(self) -> dict[str, Any]:
        return {"answers": self.answers, "hits": self.hits, "hit_rate": _rate(self.hits, self.answers),
                "rated_hits": self.rated_hits, "false_hits": self.false_hits,
                "false_hit_rate": _rate(self.false_hits, self.rated_hits)}


@dataclass
class Ratings:
    positive: int = 0
    negative: int = 0
    last: datetime | None = field(default=None)

    @property
    def n(self) -> int:
        return self.positive + self.negative

    @property
    def score(self) -> float:
        return (self.positive + 1) / (self.n + 2)

    def add(self, rating: int, at: datetime) -> None:
        if rating <= 2:
            self.negative += 1
        elif rating >= 4:
            self.positive += 1
        else:
            return
        self.last = at if self.last is None or at > self.last else self.last

    def view(self) -> dict[str, Any]:
        return {"ratings": self.n, "positive": self.positive, "negative": self.negative,
                "score": round(self.score, 3) if self.n else None}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def cache_check(window: CacheCounts, baseline: CacheCounts, cfg: SignalSettings) -> dict[str, Any]:
    flags: list[str] = []
    severity = "ok" if window.answers else "info"
    if window.rated_hits >= cfg.min_ratings and window.false_hits:
        rate = window.false_hits / window.rated_hits
        if rate >= cfg.false_hit_rate:
            flags.append("cache_false_hits")
            severity = worst(severity, "crit" if rate >= min(1.0, 2 * cfg.false_hit_rate) else "warn")
    if window.answers >= cfg.min_answers and baseline.answers >= cfg.min_answers and baseline.hits:
        if window.hits / window.answers < (1 - cfg.hit_rate_drop) * baseline.hits / baseline.answers:
            flags.append("cache_hit_rate_drop")
            severity = worst(severity, "warn")
    return {"severity": severity, "flags": flags, "window": window.view(), "baseline": baseline.view()}


def score_check(window: Ratings, baseline: Ratings, until: datetime, cfg: SignalSettings) -> dict[str, Any]:
    flags: list[str] = []
    severity = "ok" if window.n or baseline.n else "info"
    if window.n >= cfg.min_ratings and baseline.n >= cfg.min_ratings:
        drop = baseline.score - window.score
        if drop >= cfg.score_drop:
            flags.append("score_drop")
            severity = worst(severity, "crit" if drop >= 2 * cfg.score_drop else "warn")
    last = max((r.last for r in (window, baseline) if r.last is not None), default=None)
    if baseline.n and last is not None and (until - last).total_seconds() >= cfg.score_stale_h * 3600:
        flags.append("score_stale")
        severity = worst(severity, "warn")
    return {"severity": severity, "flags": flags, "window": window.view(), "baseline": baseline.view(),
            "last_rated_at": last.isoformat().replace("+00:00", "Z") if last else None}
