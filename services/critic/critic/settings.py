from pydantic import Field

from moe_core.runtime.settings import FleetSettings


class CriticSettings(FleetSettings):
    service_name: str = "critic"
    http_port: int = 8105
    critic_max_tokens: int = Field(default=768, ge=16, description="Token budget of the review (a correction is "
                                   "a whole answer)")
    answer_ttl_s: int = Field(default=3600, description="How long a final answer is remembered for "
                              "redeliveries")
