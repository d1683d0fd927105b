"""Client profiles: per-client defaults applied at the edge (the original's CLAUDE_CODE_PROFILES, TOOL_MAX_TOKENS
and REASONING_MAX_TOKENS).

A profile (`MOE_CLIENT_PROFILES`, a JSON array) is chosen per request: the `X-MOE-Profile` header names one
(an unknown name is a 404 `profile_not_found` in the API's envelope), else the first profile that lists the
calling key (its id or its name), else the first whose `user_agents` pattern (shell wildcards) matches the
User-Agent (Claude Code sends `claude-cli/…`), else none. What a profile changes, and nothing else:

- `mode`: the mode a client's own model id (`claude-*`, `gpt-*` through MOE_MODEL_MAP) runs in; an id that is
  one of our modes, or names a template, keeps its mode. The key must still allow the mode.
- `template`: the expert template when neither the model id nor X-MOE-Template names one (a key's own default
  template comes first).
- `max_tokens`: the default (and cap) of an answer's tokens when the request has no tools and no thinking mode.
- `tool_max_tokens` / `reasoning_max_tokens`: the cap for a request with tools / in a mode that forces the
  thinking step; without a profile the edge's MOE_TOOL_MAX_TOKENS / MOE_REASONING_MAX_TOKENS (8192 / 16384,
  the original's) cap them. A cap never raises what the client asked for.
- `reasoning_format`: OpenAI streams' thinking as reasoning_content, a <think> block (Open WebUI's panel) or
  none, unless the request's metadata.reasoning_format says otherwise.
"""

from __future__ import annotations

from contextvars import ContextVar
from fnmatch import fnmatchcase
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.types import ASGIApp, Receive, Scope, Send

from moe_core.access.keystore import ApiKey
from moe_core.contracts import GenerationParams
from moe_core.llm.modes import FORCE_THINK_MODES, MODES
from moe_core.runtime.openai_error import OpenAIError

PROFILE_HEADER = "x-moe-profile"
TOKENS = Field(default=None, ge=1, le=32768)


class ClientProfile(BaseModel):
    """One client's defaults (see the module's docstring)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    user_agents: list[str] = Field(default_factory=list, description="User-Agent patterns (shell wildcards)")
    keys: list[str] = Field(default_factory=list, description="API key ids or names that use this profile")
    mode: str | None = None
    template: str | None = Field(default=None, min_length=1)
    max_tokens: int | None = TOKENS
    tool_max_tokens: int | None = TOKENS
    reasoning_max_tokens: int | None = TOKENS
    reasoning_format: Literal["reasoning_content", "think", "none"] | None = None

    @field_validator("mode")
    @classmethod
    def _mode(cls, value: str | None) -> str | None:
        if value is not None and value not in MODES:
            raise ValueError(f"{value!r} is not a mode ({', '.join(MODES)})")
        return value

    def for_key(self, key: ApiKey) -> bool:
        return key.id in self.keys or key.name in self.keys

    def for_user_agent(self, user_agent: str) -> bool:
        return any(fnmatchcase(user_agent, pattern) for pattern in self.user_agents)


def check_profiles(value: list[ClientProfile]) -> list[ClientProfile]:
    names = [p.name for p in value]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise ValueError(f"client_profiles: the name {duplicate!r} is used twice")
    return value


# (the X-MOE-Profile header, the User-Agent) of the request being handled; set by ClientHeaders.
client_headers: ContextVar[tuple[str, str]] = ContextVar("client_headers", default=("", ""))


class ClientHeaders:
    """Keeps the headers that choose a profile for the chat flow, whatever API the request came through.
    Pure ASGI, so streams pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
                       if k in (b"x-moe-profile", b"user-agent")}
            client_headers.set((headers.get(PROFILE_HEADER, "").strip(), headers.get("user-agent", "")))
        await self.app(scope, receive, send)


def choose(profiles: list[ClientProfile], key: ApiKey | None) -> ClientProfile | None:
    """The request's profile (see the module's docstring); None: the edge's defaults."""
    named, user_agent = client_headers.get()
    if named:
        found = next((p for p in profiles if p.name == named), None)
        if found is None:
            known = ", ".join(p.name for p in profiles) or "none is configured"
            raise OpenAIError(404, f"The client profile '{named}' does not exist (profiles: {known})",
                              param=PROFILE_HEADER, code="profile_not_found")
        return found
    if key is not None:  # a key named by a profile beats a User-Agent pattern
        by_key = next((p for p in profiles if p.for_key(key)), None)
        if by_key is not None:
            return by_key
    return next((p for p in profiles if p.for_user_agent(user_agent)), None)


def token_cap(profile: ClientProfile | None, mode: str, has_tools: bool, tool_max: int,
              reasoning_max: int) -> tuple[int | None, bool]:
    """(the cap on the answer's tokens, whether it is also the default when the request sets none)."""
    if has_tools:
        return (profile.tool_max_tokens if profile and profile.tool_max_tokens else tool_max), False
    if mode in FORCE_THINK_MODES:
        return (profile.reasoning_max_tokens if profile and profile.reasoning_max_tokens else reasoning_max), False
    return (profile.max_tokens if profile else None), True


def capped(params: GenerationParams, cap: int | None, default: bool) -> GenerationParams:
    """`params` with max_tokens at most `cap` (and `cap` when unset, if it is the default)."""
    if cap is None or (params.max_tokens is None and not default):
        return params
    return params.model_copy(update={"max_tokens": min(params.max_tokens or cap, cap)})
