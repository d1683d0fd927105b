"""A request's tool_choice that demands a call ("required", a named function; Anthropic's "any" and "tool" as the
edge maps them): the expert-worker never lets a text answer stand for it (it tries the next tier's models, then
fails the task with `unmet_error`), and the merger answers such a request with the error `tool_choice_unmet`
(the edge's 422)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

UNMET = "tool_choice not met"  # how a task's error starts when no model called the tool as demanded


class _Called(Protocol):
    @property
    def tool_calls(self) -> Sequence[Mapping[str, Any]] | None: ...


def forced_tool(choice: str | dict[str, Any] | None) -> str | bool:
    """What a tool_choice demands: a call of this function (its name), any call (True), or nothing (False).
    OpenAI's "required" and {"type": "function", …}, Anthropic's "any" and "tool" as the edge maps them."""
    if choice == "required":
        return True
    if isinstance(choice, dict) and choice.get("type") == "function":
        return str((choice.get("function") or {}).get("name") or choice.get("name") or "") or True
    return False


def meets(completion: _Called | None, forced: str | bool) -> bool:
    """The answer called a tool as the request's tool_choice demands (always, when it demands none)."""
    if not forced:
        return True
    calls = (completion.tool_calls or []) if completion is not None else []
    return bool(calls) if forced is True else any((c.get("function") or {}).get("name") == forced for c in calls)


def unmet_error(forced: str | bool) -> str:
    wanted = "a tool" if forced is True else f"the function '{forced}'"
    return f"{UNMET}: the model answered without calling {wanted}, which the request's tool_choice requires"
