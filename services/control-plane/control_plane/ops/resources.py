"""What the control plane's resource APIs share (tenant documents, knowledge imports): routes declared as a table,
integer and enumerated query parameters, not-found errors, and a store that is down answered as a 503 in the
API's own envelope (with Retry-After) rather than a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, Request

from moe_core.runtime.openai_error import OpenAIError

log = logging.getLogger(__name__)
# (method, path, endpoint) or (method, path, endpoint, status code of a success)
Route = tuple[str, str, Callable[..., Any]] | tuple[str, str, Callable[..., Any], int]


def router(*routes: Route) -> APIRouter:
    """A router with these routes, in this order."""
    made = APIRouter()
    for method, path, endpoint, *status in routes:
        made.add_api_route(path, endpoint, methods=[method], status_code=status[0] if status else None)
    return made


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    """The query parameter `name` as an integer from `low` to `high` (`default` when absent); else a 400."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = int(raw) if raw.isascii() and raw.isdigit() else low - 1
    if not low <= value <= high:
        raise OpenAIError(400, f"{name} must be an integer from {low} to {high}", param=name, code="invalid_value")
    return value


def choice_param(request: Request, name: str, choices: Sequence[str], default: str) -> str:
    """The query parameter `name`, one of `choices` (`default` when absent); else a 400."""
    value = request.query_params.get(name, default)
    if value not in choices:
        raise OpenAIError(400, f"{name} must be one of {', '.join(choices)}", param=name, code="invalid_value")
    return value


def not_found(what: str, ident: str) -> OpenAIError:
    return OpenAIError(404, f"no {what} {ident!r}", param="id", code="not_found")


@contextmanager
def unavailable(what: str, code: str, errors: tuple[type[BaseException], ...],
                forget: Callable[[], None] | None = None) -> Iterator[None]:
    """`errors` raised inside are "`what` is unavailable" (503, `code`); `forget` drops a broken client first.
    The API's own errors pass through."""
    try:
        yield
    except OpenAIError:
        raise
    except errors as exc:
        if forget is not None:
            forget()
        log.warning("%s failed: %s: %s", what, type(exc).__name__, exc)
        raise OpenAIError(503, f"{what} is unavailable", "server_error", code=code) from exc
