"""Percentiles and medians (pure functions, no numpy)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

PERCENTILES = (50, 90, 99)


def percentile(values: list[float], pct: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(seconds: list[float]) -> dict[str, float | int | None]:
    """p50/p90/p99/mean/max in milliseconds of a list of durations in seconds."""
    ms = [s * 1000 for s in seconds]
    out: dict[str, float | int | None] = {f"p{p}": _round(percentile(ms, p)) for p in PERCENTILES}
    out["mean"] = _round(statistics.fmean(ms)) if ms else None
    out["max"] = _round(max(ms)) if ms else None
    out["n"] = len(ms)
    return out


def median_of(values: Iterable[float | int | None]) -> float | None:
    present = [v for v in values if v is not None]
    return _round(statistics.median(present)) if present else None


def median_summary(summaries: list[dict[str, Any]]) -> dict[str, float | None]:
    """Per key, the median across runs (keys with a numeric value in any run)."""
    keys = [k for k in (summaries[0] if summaries else {}) if k != "n"]
    return {k: median_of(s.get(k) for s in summaries) for k in keys}


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
