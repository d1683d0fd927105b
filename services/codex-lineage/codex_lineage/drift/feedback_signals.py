"""The cache and score drift checks over the record: the answers (`Answer`: served from the semantic cache or not)
and the ratings (`Feedback`) codex-lineage signed into the audit store, bucketed by when their producer made them.
A check's history is the same check evaluated at the end of each of the last `periods` windows (newest first),
each window against the baseline before it. Replays (`replay_of`) and failed answers are not counted; a
redelivered message counts once. Datasets: `cache/<tenant>` (the tenant's part of the semantic cache) and
`scores/<tenant>` (its experts' scores, one item per category x model)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from codex_lineage.drift.cache_counts import cache_counts
from codex_lineage.drift.flags import SEVERITIES, worst
from codex_lineage.drift.signals import (
    CACHE_FLAGS,
    SCORE_FLAGS,
    Ratings,
    SignalSettings,
    cache_check,
    score_check,
)
from moe_core.audit.store import AuditStore

RATINGS = """
SELECT tenant_id, response_id, created_at, (payload::jsonb ->> 'rating')::int AS rating,
       payload::jsonb -> 'models_used' AS models_used
FROM audit_log
WHERE kind = 'record' AND message_type = 'Feedback' AND recorded_at >= $1 AND created_at >= $1
  AND created_at < $2 AND ($3::text IS NULL OR tenant_id = $3) AND payload::jsonb ->> 'replay_of' IS NULL
ORDER BY tenant_id, seq
"""


@dataclass(frozen=True)
class Rating:
    at: datetime
    category: str
    model: str
    rating: int


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


class Signals:
    def __init__(self, store: AuditStore, cfg: SignalSettings) -> None:
        self.store, self.cfg = store, cfg

    async def _read(self, since: datetime, until: datetime, tenant: str | None) -> dict[str, list[Rating]]:
        """The ratings (Feedback, the first of each request) per tenant; the answers are counted by Postgres
        (drift.cache_counts)."""
        rows = await self.store.pool.fetch(RATINGS, since, until, tenant)
        rated: dict[str, set[str]] = defaultdict(set)
        ratings: dict[str, list[Rating]] = defaultdict(list)
        for row in rows:
            who, rid = row["tenant_id"], row["response_id"]
            if rid in rated[who] or row["rating"] is None:  # one rating per answer; a redelivery counts once
                continue
            rated[who].add(rid)
            for use in json.loads(row["models_used"] or "[]"):
                ratings[who].append(Rating(row["created_at"], str(use.get("category", "")),
                                           str(use.get("model", "")), row["rating"]))
        return ratings

    def _bounds(self, hours: float, periods: int, now: datetime) -> list[tuple[datetime, datetime, datetime]]:
        window, baseline = timedelta(hours=hours), timedelta(hours=self.cfg.baseline_h)
        return [(now - i * window - window - baseline, now - i * window - window, now - i * window)
                for i in range(periods)]

    async def cache(self, hours: float, periods: int = 1, tenant: str | None = None) -> list[dict[str, Any]]:
        """Per tenant with answers in the span, the cache check of the window ending now and its history."""
        now = datetime.now(UTC)
        bounds = self._bounds(hours, periods, now)
        windows = [w for start, mid, end in bounds for w in ((mid, end), (start, mid))]
        counted = await cache_counts(self.store.pool, bounds[-1][0], now, tenant, windows)
        out = []
        for who in sorted(counted):
            counts = counted[who]
            history = [{"until": _iso(end), **cache_check(counts[2 * i], counts[2 * i + 1], self.cfg)}
                       for i, (_, _, end) in enumerate(bounds)]
            out.append({"dataset": f"cache/{who}", "tenant": who, **history[0],
                        "history": [{k: v for k, v in h.items() if k != "baseline"} for h in history]})
        return out

    async def scores(self, hours: float, periods: int = 1, tenant: str | None = None) -> list[dict[str, Any]]:
        """Per tenant x category x model rated in the span, the score check of the window ending now and its
        history."""
        now = datetime.now(UTC)
        bounds = self._bounds(hours, periods, now)
        ratings = await self._read(bounds[-1][0], now, tenant)
        out = []
        for who in sorted(ratings):
            items = sorted({(r.category, r.model) for r in ratings[who]})
            for category, model in items:
                mine = [r for r in ratings[who] if (r.category, r.model) == (category, model)]
                history = [{"until": _iso(end), **score_check(_ratings(mine, mid, end), _ratings(mine, start, mid),
                                                              end, self.cfg)} for start, mid, end in bounds]
                out.append({"dataset": f"scores/{who}", "tenant": who, "category": category, "model": model,
                            **history[0],
                            "history": [{k: v for k, v in h.items() if k != "baseline"} for h in history]})
        return out


def _ratings(ratings: list[Rating], start: datetime, end: datetime) -> Ratings:
    out = Ratings()
    for r in ratings:
        if start <= r.at < end:
            out.add(r.rating, r.at)
    return out


def summarise(checks: list[dict[str, Any]], flags: tuple[str, ...], hours: float) -> dict[str, Any]:
    severities = Counter(c["severity"] for c in checks)
    raised = Counter(f for c in checks for f in c["flags"])
    overall = "ok"
    for severity in severities:
        overall = worst(overall, severity)
    return {"window_hours": hours, "checked": len(checks), "severity": overall if checks else "ok",
            "by_severity": {s: severities.get(s, 0) for s in SEVERITIES},
            "by_flag": {f: raised.get(f, 0) for f in flags}}


__all__ = ["CACHE_FLAGS", "SCORE_FLAGS", "Signals", "summarise"]
