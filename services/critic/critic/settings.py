from pydantic import Field

from moe_core.settings import FleetSettings


class CriticSettings(FleetSettings):
    service_name: str = "critic"
    http_port: int = 8105
    critic_max_tokens: int = Field(default=768, ge=16)
    answer_ttl_s: int = 3600
