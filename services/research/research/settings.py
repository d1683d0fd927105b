from pydantic import Field

from moe_core.runtime.settings import FleetSettings


class ResearchSettings(FleetSettings):
    service_name: str = "research"
    http_port: int = 8104
    searxng_url: str = Field(default="http://127.0.0.1:8888", description="Base URL of a SearXNG instance")
    searxng_timeout_s: float = Field(default=10.0, gt=0, description="Per query (never past the request's deadline)")
    searxng_language: str = Field(default="all", description="SearXNG's language parameter")
    research_max_queries: int = Field(default=3, ge=1, le=10, description="Queries per task")
    research_summarise: bool = Field(default=True, description="Let a model write a cited summary of the hits")
    research_max_tokens: int = Field(default=300, ge=16, description="Token budget of the summary")
    result_ttl_s: int = Field(default=3600, description="How long a task's result is remembered for redeliveries")
