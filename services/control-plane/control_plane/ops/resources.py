"""What the control plane's resource APIs share (tenant documents, knowledge imports): routes declared as a table,
not-found errors (query parameters: moe_core.runtime.query_params), and a store that is down answered as a 503 in the
API's own envelope (with Retry-After) rather than a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter

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
