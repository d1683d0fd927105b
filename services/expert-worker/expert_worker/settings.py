from pydantic import Field

from moe_core.settings import FleetSettings


class ExpertSettings(FleetSettings):
    service_name: str = "expert-worker"
    http_port: int = 8102
    expert_max_tokens: int = Field(default=512, ge=16, description="Default token budget of an expert call")
    expert_max_output_chars: int = Field(default=8000, ge=100, description="Expert answers are capped at this "
                                         "length")
    result_ttl_s: int = Field(default=3600, description="How long a task's result is remembered for redeliveries")
    expert_parallel: int = Field(default=1, ge=1, le=8, description="Models of one tier asked side by side")
    expert_history_turns: int = Field(default=6, ge=0, description="Earlier chat turns an expert sees")
    expert_history_chars: int = Field(default=6000, ge=0, description="Character budget of those turns")
    expert_few_shot_chars: int = Field(default=3000, ge=0, description="Budget of semantic-cache examples")
    scores_enabled: bool = Field(default=True, description="Skip models with bad feedback for a category")
    score_min: float = Field(default=0.3, ge=0, le=1, description="Skipped under this score ...")
    score_min_ratings: int = Field(default=5, ge=1, description="... after at least this many ratings")
    score_half_life_s: float = Field(default=30 * 86400, ge=0, description="Ratings fade (0 = never)")
