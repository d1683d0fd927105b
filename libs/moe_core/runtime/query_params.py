"""The admin APIs' one query-string reader (the control plane's and codex-lineage's): a bad value is a 400 in the
API's own envelope (moe_core.runtime.openai_error) that names the parameter and what it must be, never FastAPI's
422 or a 500."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import overload

from fastapi import Request

from moe_core.runtime.openai_error import OpenAIError


def _invalid(name: str, must: str) -> OpenAIError:
    return OpenAIError(400, f"{name} must be {must}", param=name, code="invalid_value")


def integer(request: Request, name: str, default: int, low: int, high: int) -> int:
    """The parameter `name` as a whole number from `low` to `high` (`default` when absent)."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = int(raw) if raw.isascii() and raw.isdigit() else low - 1
    if not low <= value <= high:
        raise _invalid(name, f"an integer from {low} to {high}")
    return value


def number(request: Request, name: str, default: float, low: float, high: float) -> float:
    """The parameter `name` as a finite number from `low` to `high` (`default` when absent)."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not low <= value <= high:
        raise _invalid(name, f"a number between {low:g} and {high:g}")
    return value


@overload
def choice(request: Request, name: str, allowed: Sequence[str], default: str) -> str: ...
@overload
def choice(request: Request, name: str, allowed: Sequence[str], default: None = None) -> str | None: ...
def choice(request: Request, name: str, allowed: Sequence[str], default: str | None = None) -> str | None:
    """The parameter `name`, one of `allowed` (`default` when absent; None: no filter)."""
    value = request.query_params.get(name, default)
    if value is not None and value not in allowed:
        raise _invalid(name, f"one of {', '.join(allowed)}")
    return value


YEAR_H = 24 * 366  # the longest window a query may ask for by default (`hours`)


def hours(request: Request, default: float, longest: float = YEAR_H) -> float:
    """The window of a query in hours (`hours`, 0.01 to `longest`)."""
    return number(request, "hours", default, 0.01, longest)
