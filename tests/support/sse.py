"""Reading a streamed reply the way a client does: its SSE events, the text of an OpenAI stream's deltas."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import httpx


async def sse_events(response: httpx.Response) -> AsyncIterator[dict[str, str]]:
    """SSE events as {id, event, data} (comments, i.e. keep-alives, left out)."""
    event: dict[str, str] = {}
    async for line in response.aiter_lines():
        if not line:
            if event:
                yield event
            event = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            event[field] = value[1:] if value.startswith(" ") else value


def chat_text(events: list[dict[str, str]], field: str) -> str:
    """The text of a chat completion stream's deltas in `field` (`content`, `reasoning_content`)."""
    out = ""
    for e in events:
        if e.get("data", "").startswith("{"):
            for choice in json.loads(e["data"]).get("choices", []):
                out += choice["delta"].get(field) or ""
    return out


async def sse_until(events: AsyncIterator[dict[str, str]],
                    stop: Callable[[list[dict[str, str]]], bool]) -> list[dict[str, str]]:
    """The events up to the first after which `stop(seen)` holds; an AssertionError if the stream ends first."""
    seen: list[dict[str, str]] = []
    async for event in events:
        seen.append(event)
        if stop(seen):
            return seen
    raise AssertionError(f"the stream ended early: {seen}")
