from pydantic import Field

from moe_core.settings import FleetSettings


class ResearchSettings(FleetSettings):
    service_name: str = "research"
    http_port: int = 8104
    searxng_url: str = Field(default="http://127.0.0.1:8888", description="Base URL of a SearXNG instance")
    searxng_timeout_s: float = Field(default=10.0, gt=0)
    searxng_language: str = "all"
    research_max_queries: int = Field(default=3, ge=1, le=10)
    research_summarise: bool = Field(default=True, description="Let a model write a cited summary of the hits")
    research_max_tokens: int = Field(default=300, ge=16)
    result_ttl_s: int = 3600
