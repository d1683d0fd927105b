"""What the edge knows of a protocol (gateway.protocols.registry lists them)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from moe_core.runtime.openai_error import OpenAIError

if TYPE_CHECKING:
    from gateway.protocols.responses.store import ResponseStore
    from gateway.session import RequestRun
    from gateway.stream import Frames
    from moe_core.access.keystore import ApiKey


@dataclass(frozen=True)
class Resumed:
    """A dropped stream rendered again (gateway.resume): its run, the spec its opening stored, whose it is."""

    run: RequestRun
    spec: dict[str, Any]
    tenant_id: str
    key: ApiKey
    responses: ResponseStore


def openai_envelope(error: OpenAIError) -> dict[str, Any]:
    return error.body()


@dataclass(frozen=True)
class Protocol:
    """name: the stream registry's Api and the requests metric's endpoint; prefix: the paths whose errors are in
    this protocol's envelope; render: its error response, which counts the error itself (None: OpenAI's, counted
    by the app); resumed: its frames for a resumed stream (None: it does not stream)."""

    name: str
    prefix: str
    router: APIRouter
    envelope: Callable[[OpenAIError], dict[str, Any]] = openai_envelope
    render: Callable[[OpenAIError], JSONResponse] | None = None
    resumed: Callable[[Resumed], Awaitable[Frames]] | None = None
