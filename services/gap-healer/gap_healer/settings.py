from pydantic import Field

from moe_core.graph.settings import GraphSettings


class GapHealerSettings(GraphSettings):
    service_name: str = "gap-healer"
    http_port: int = 8108
    gap_healer_role: str = Field(default="gap_healer", description="MODEL_ASSIGNMENTS role; falls back to default")
    gap_min_confidence: float = Field(default=0.5, ge=0, le=1, description="Classifications below are not written")
    gap_max_tokens: int = Field(default=200, ge=32)
    gap_timeout_s: float = Field(default=60.0, gt=0)
    gap_memo_ttl_s: int = Field(default=86_400, ge=60)
    lint_page_size: int = Field(default=500, ge=1, le=10_000)
