from pydantic import Field
from pydantic_settings import SettingsConfigDict

from moe_core.settings import FleetSettings


class ExpertSettings(FleetSettings):
    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    service_name: str = "expert-worker"
    http_port: int = 8102
    expert_max_tokens: int = Field(default=512, ge=16)
    expert_max_output_chars: int = Field(default=8000, ge=100)
    result_ttl_s: int = 3600
