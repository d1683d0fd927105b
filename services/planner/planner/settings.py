from pydantic import Field

from moe_core.settings import FleetSettings


class PlannerSettings(FleetSettings):
    service_name: str = "planner"
    http_port: int = 8101
    planner_max_tasks: int = Field(default=4, ge=1, le=8, description="Most tasks a plan may hold")
    planner_max_tokens: int = Field(default=200, ge=16, description="Token budget of the planner call")
    planner_timeout_s: float = Field(default=60.0, gt=0, description="Planner call timeout (then the fallback "
                                     "plan)")
    plan_ttl_s: int = Field(default=3600, description="How long a request's plan (or cache-hit answer) is "
                            "remembered for redeliveries")
    # semantic cache (docs/semantic-cache.md: thresholds chosen by cache_threshold_report.py)
    chroma_url: str = Field(default="http://127.0.0.1:8000", description="Chroma server (cache, router)")
    semantic_cache_enabled: bool = Field(default=True, description="Semantic cache: lookups, storing answers, "
                                          "flags")
    cache_hard_threshold: float = Field(default=0.16, ge=0, le=2, description="Cosine distance of a hard hit")
    cache_soft_threshold: float = Field(default=0.35, ge=0, le=2, description="Up to this: few-shot examples")
    cache_few_shot_max: int = Field(default=2, ge=0, le=8, description="Few-shot examples per plan")
    cache_ttl_s: int = Field(default=7 * 86400, ge=60, description="Entries older than this are not used")
    cache_max_answer_chars: int = Field(default=20_000, ge=100, description="Longer answers are not cached")
    cache_pending_ttl_s: int = Field(default=3600, ge=60, description="How long a plan waits for its answer")
    # plan cache (Redis) and routing without the planner model
    plan_cache_enabled: bool = Field(default=True, description="Reuse the planner model's plan of the same "
                                      "normalised question (Redis)")
    plan_cache_ttl_s: int = Field(default=3600, ge=1, description="How long a cached plan is reused")
    router_enabled: bool = Field(default=True, description="Semantic router: a clear match skips the planner "
                                  "model")
    router_threshold: float = Field(default=0.55, ge=0, le=2, description="Distance of a clear route")
    router_margin: float = Field(default=0.15, ge=0, le=2, description="Lead over the next category")
    planner_skip_trivial: bool = Field(default=True, description="Trivial questions: one expert, no planner")
    planner_graph_tasks: bool = Field(default=True, description="Add a knowledge-graph task to non-trivial plans")
    planner_research_tasks: bool = Field(default=True, description="The planner model may plan a web research task "
                                         "(a query) for questions that need current or external facts")
