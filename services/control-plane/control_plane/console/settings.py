"""Console settings (prefix MOE_CONSOLE_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOE_CONSOLE_", extra="ignore")

    enabled: bool = Field(default=True, description="Serve the admin console under /console")
    session_ttl_s: int = Field(default=8 * 3600, ge=60, le=7 * 86400, description="A sign-in lasts this long")
    secure_cookie: bool = Field(default=False, description="Mark cookies Secure (set it behind HTTPS)")
    codex_lineage_url: str = Field(default="http://127.0.0.1:8109",
                                   description="codex-lineage's HTTP API, asked server-side by the data-health page "
                                               "(/v1/health/drift*) with the signed-in admin key")
    codex_lineage_timeout_s: float = Field(default=15.0, gt=0, le=120,
                                           description="How long the data-health page waits for codex-lineage")
