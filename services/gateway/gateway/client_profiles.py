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

from redis.asyncio import Redis

from moe_core.access.keystore import ApiKey
from moe_core.contracts import GenerationParams
from moe_core.llm.client_profiles import ClientProfile, check_profiles
from moe_core.llm.inference.live import LiveOverrides, merged_profiles
from moe_core.llm.modes import FORCE_THINK_MODES
from moe_core.runtime.openai_error import OpenAIError

__all__ = ["PROFILE_HEADER", "ClientProfile", "LiveProfiles", "capped", "check_profiles", "choose", "client_headers",
           "token_cap"]

PROFILE_HEADER = "x-moe-profile"

class LiveProfiles:
    """The profiles in force: MOE_CLIENT_PROFILES with the console's changes laid over them (by name, from Redis,
    moe_core.llm.inference.live), so a profile edited in the console applies to the next request: read before it
    (`current`), or taken as last seen (`known`) and checked in the request's limits script (gateway.chat), which
    gives the overlay in force when it is another (`saw`)."""

    def __init__(self, defaults: list[ClientProfile], redis: Redis, namespace: str) -> None:
        self.defaults = defaults
        self.live = LiveOverrides(redis, namespace)
        self.profiles = list(defaults)

    async def current(self) -> list[ClientProfile]:
        found = await self.live.changed()
        if found is not None:
            self.profiles = merged_profiles(self.defaults, found)
        return self.profiles

    def known(self) -> tuple[list[ClientProfile], tuple[str, str]]:
        """The profiles as last seen, no round trip, and what checks them: (the overlay's key, its SHA-1)."""
        return self.profiles, (self.live.key, self.live.digest())

    def saw(self, raw: str) -> list[ClientProfile]:
        """The profiles with the overlay `raw` ('': none) as read elsewhere (the limits script)."""
        found = self.live.seen(raw or None)
        if found is not None:
            self.profiles = merged_profiles(self.defaults, found)
        return self.profiles


# (the X-MOE-Profile header, the User-Agent) of the request being handled; set by gateway.app's EdgeHeaders.
client_headers: ContextVar[tuple[str, str]] = ContextVar("client_headers", default=("", ""))


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
