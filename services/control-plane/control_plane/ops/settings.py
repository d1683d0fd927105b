"""Settings of the operators' endpoints (control_plane.ops.api), env prefix MOE_."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OpsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    prometheus_url: str = Field(default="", description="Prometheus scraping the fleet: the inference servers' "
                                "latency percentiles in GET /v1/admin/providers (empty: not reported)")
    ops_latency_window: str = Field(default="1h", pattern=r"^[1-9][0-9]*[smhd]$",
                                    description="Window of those percentiles (a PromQL duration)")
    ops_patterns_scan: int = Field(default=2000, ge=1, le=100_000, description="Plan-cache entries and rated "
                                   "answers GET /v1/admin/planner-patterns reads at most")
