"""Query parameters read by hand, so bad input is a 400 in the API's own envelope (never FastAPI's 422)."""

from __future__ import annotations

import math

from fastapi import Request

from codex_lineage.api import ApiError

MAX_HOURS = 24 * 366  # the longest window a health query may ask for (`hours`)


def choice(request: Request, name: str, allowed: tuple[str, ...], default: str | None) -> str | None:
    value = request.query_params.get(name, default)
    if value is not None and value not in allowed:
        raise ApiError(400, f"{name} must be one of {', '.join(allowed)}", "invalid_value")
    return value


def number(request: Request, name: str, default: float, low: float, high: float) -> float:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be a number between {low:g} and {high:g}", "invalid_value") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise ApiError(400, f"{name} must be a number between {low:g} and {high:g}", "invalid_value")
    return value


def hours(request: Request, default: float) -> float:
    """The window of a health query (`hours`, 0.01 to MAX_HOURS)."""
    return number(request, "hours", default, 0.01, MAX_HOURS)
