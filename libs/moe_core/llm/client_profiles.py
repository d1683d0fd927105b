"""A client profile's model (the edge applies it: gateway.client_profiles; the console edits them:
control_plane.fleet_config), here so that both validate one shape."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from moe_core.llm.modes import MODES

TOKENS = Field(default=None, ge=1, le=32768)


class ClientProfile(BaseModel):
    """One client's defaults (gateway.client_profiles says what each field does)."""

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

    def for_key(self, key: Any) -> bool:
        """key: an API key (moe_core.access.keystore.ApiKey: its id and name)."""
        return key.id in self.keys or key.name in self.keys

    def for_user_agent(self, user_agent: str) -> bool:
        return any(fnmatchcase(user_agent, pattern) for pattern in self.user_agents)


def check_profiles(value: list[ClientProfile]) -> list[ClientProfile]:
    names = [p.name for p in value]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise ValueError(f"client_profiles: the name {duplicate!r} is used twice")
    return value


class ClientProfileSettings(BaseSettings):
    """MOE_CLIENT_PROFILES: the profiles at start (the edge applies them; the console's changes are laid over
    them by name, moe_core.llm.inference.live)."""

    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    client_profiles: list[ClientProfile] = Field(
        default_factory=list, description="Client profiles (gateway.client_profiles; the console may change "
        "them), JSON array: per-client defaults chosen by X-MOE-Profile, the key or the User-Agent, e.g. "
        '[{"name": "claude-code", "user_agents": '
        '["claude-cli/*"], "mode": "moe-orchestrator-agent-orchestrated"}]')

    @field_validator("client_profiles")
    @classmethod
    def _client_profiles(cls, value: list[ClientProfile]) -> list[ClientProfile]:
        return check_profiles(value)
