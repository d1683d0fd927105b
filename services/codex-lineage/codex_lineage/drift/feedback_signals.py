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

from codex_lineage.drift.flags import SEVERITIES, worst
from codex_lineage.drift.signals import (
    CACHE_FLAGS,
    SCORE_FLAGS,
    CacheCounts,
    Ratings,
    SignalSettings,
    cache_check,
    score_check,
)
from moe_core.audit.store import AuditStore

ROWS = """
SELECT tenant_id, response_id, message_type, created_at,
       coalesce((payload::jsonb ->> 'cache_hit')::boolean, false) AS cache_hit,
       coalesce(jsonb_typeof(payload::jsonb -> 'error') = 'object', false) AS failed,
       (payload::jsonb ->> 'rating')::int AS rating, payload::jsonb -> 'models_used' AS models_used
FROM audit_log
WHERE kind = 'record' AND message_type = ANY($1::text[]) AND recorded_at >= $2 AND created_at >= $2
  AND created_at < $3 AND ($4::text IS NULL OR tenant_id = $4) AND payload::jsonb ->> 'replay_of' IS NULL
ORDER BY tenant_id, seq
"""


@dataclass(frozen=True)
class Answer:
    at: datetime
    hit: bool
    rating: int | None


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

    async def _read(self, since: datetime, until: datetime, tenant: str | None
                    ) -> tuple[dict[str, dict[str, Answer]], dict[str, list[Rating]]]:
        rows = await self.store.pool.fetch(ROWS, ["Answer", "Feedback"], since, until, tenant)
        answers: dict[str, dict[str, tuple[datetime, bool]]] = defaultdict(dict)
        rated: dict[str, dict[str, int]] = defaultdict(dict)
        ratings: dict[str, list[Rating]] = defaultdict(list)
        for row in rows:
            who, rid = row["tenant_id"], row["response_id"]
            if row["message_type"] == "Answer":
                if not row["failed"]:
                    answers[who].setdefault(rid, (row["created_at"], row["cache_hit"]))
                continue
            if rid in rated[who] or row["rating"] is None:  # one rating per answer; a redelivery counts once
                continue
            rated[who][rid] = row["rating"]
            for use in json.loads(row["models_used"] or "[]"):
                ratings[who].append(Rating(row["created_at"], str(use.get("category", "")),
                                           str(use.get("model", "")), row["rating"]))
        return ({who: {rid: Answer(at, hit, rated[who].get(rid)) for rid, (at, hit) in found.items()}
                 for who, found in answers.items()}, ratings)

    def _bounds(self, hours: float, periods: int, now: datetime) -> list[tuple[datetime, datetime, datetime]]:
        window, baseline = timedelta(hours=hours), timedelta(hours=self.cfg.baseline_h)
        return [(now - i * window - window - baseline, now - i * window - window, now - i * window)
                for i in range(periods)]

    async def cache(self, hours: float, periods: int = 1, tenant: str | None = None) -> list[dict[str, Any]]:
        """Per tenant with answers in the span, the cache check of the window ending now and its history."""
        now = datetime.now(UTC)
        bounds = self._bounds(hours, periods, now)
        answers, _ = await self._read(bounds[-1][0], now, tenant)
        out = []
        for who in sorted(answers):
            history = [{"until": _iso(end), **cache_check(_counts(answers[who], mid, end),
                                                          _counts(answers[who], start, mid), self.cfg)}
                       for start, mid, end in bounds]
            out.append({"dataset": f"cache/{who}", "tenant": who, **history[0],
                        "history": [{k: v for k, v in h.items() if k != "baseline"} for h in history]})
        return out

    async def scores(self, hours: float, periods: int = 1, tenant: str | None = None) -> list[dict[str, Any]]:
        """Per tenant x category x model rated in the span, the score check of the window ending now and its
        history."""
        now = datetime.now(UTC)
        bounds = self._bounds(hours, periods, now)
        _, ratings = await self._read(bounds[-1][0], now, tenant)
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


def _counts(answers: dict[str, Answer], start: datetime, end: datetime) -> CacheCounts:
    counts = CacheCounts()
    for answer in answers.values():
        if start <= answer.at < end:
            counts.answers += 1
            if answer.hit:
                counts.hits += 1
                if answer.rating is not None:
                    counts.rated_hits += 1
                    counts.false_hits += answer.rating <= 2
    return counts


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
