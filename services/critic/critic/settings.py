from pydantic import Field
from pydantic_settings import SettingsConfigDict

from moe_core.settings import FleetSettings


class CriticSettings(FleetSettings):
    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    service_name: str = "critic"
    http_port: int = 8105
    critic_max_tokens: int = Field(default=768, ge=16)
    answer_ttl_s: int = 3600
