from pydantic import Field

from moe_core.runtime.settings import FleetSettings


class GuardrailSettings(FleetSettings):
    service_name: str = "guardrail"
    http_port: int = 8111
    answer_ttl_s: int = Field(default=3600, description="How long a checked answer is remembered for redeliveries")
