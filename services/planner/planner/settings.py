from pydantic import Field
from pydantic_settings import SettingsConfigDict

from moe_core.settings import FleetSettings


class PlannerSettings(FleetSettings):
    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    service_name: str = "planner"
    http_port: int = 8101
    planner_max_tasks: int = Field(default=4, ge=1, le=8)
    planner_max_tokens: int = Field(default=200, ge=16)
    planner_timeout_s: float = Field(default=60.0, gt=0)
    plan_ttl_s: int = 3600
