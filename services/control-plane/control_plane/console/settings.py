"""Console settings (prefix MOE_CONSOLE_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOE_CONSOLE_", extra="ignore")

    enabled: bool = Field(default=True, description="Serve the admin console under /console")
    session_ttl_s: int = Field(default=8 * 3600, ge=60, le=7 * 86400, description="A sign-in lasts this long")
    secure_cookie: bool = Field(default=False, description="Mark cookies Secure (set it behind HTTPS)")
