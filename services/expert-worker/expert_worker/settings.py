from pydantic import Field

from moe_core.runtime.seed import SEED_ARCHITECTURE, SEED_SYSTEM, SeedDefault
from moe_core.runtime.settings import FleetSettings


class ExpertSettings(FleetSettings):
    service_name: str = "expert-worker"
    http_port: int = 8102
    expert_max_tokens: int = Field(default=512, ge=16, description="Default token budget of an expert call")
    expert_max_output_chars: int = Field(default=2400, ge=100, description="Expert answers are capped at this "
                                         "length (~600 tokens)")
    result_ttl_s: int = Field(default=3600, description="How long a task's result is remembered for redeliveries")
    expert_parallel: int = Field(default=1, ge=1, le=8, description="Models of one tier asked side by side")
    expert_timeout_s: float = Field(default=900.0, gt=0, description="An expert model call's timeout (within the "
                                    "request's deadline: the shorter bounds it)")
    expert_force_ensemble: bool = Field(default=False, description="Ask tier 1 and tier 2 side by side for every "
                                        "planned task (the original's forced ensemble); off: tier 2 only when no "
                                        "tier-1 answer is high confidence")
    expert_history_turns: int = Field(default=4, ge=0, description="Earlier chat turns an expert sees")
    expert_history_chars: int = Field(default=3000, ge=0, description="Character budget of those turns")
    expert_few_shot_chars: int = Field(default=3000, ge=0, description="Budget of semantic-cache examples")
    scores_enabled: bool = Field(default=True, description="Skip models with bad feedback for a category")
    score_min: float = Field(default=0.3, ge=0, le=1, description="Skipped under this score ...")
    score_min_ratings: int = Field(default=5, ge=1, description="... after at least this many ratings")
    score_half_life_s: float = Field(default=0, ge=0, description="Ratings fade with this half-life (0 = never: "
                                     "scores are permanent)")
    score_count_neutral: bool = Field(default=False, description="Count a rating of 3 as half positive, half "
                                      "negative (off: a 3 has no effect)")
    score_order: bool = Field(default=True, description="Try a category's models best score first within a tier "
                              "(off: the template order)")


_ROUTING = f"{SEED_ARCHITECTURE}: Configuration Reference (Expert Routing)"
_HISTORY = f"{SEED_ARCHITECTURE}: Configuration Reference (History & Timeouts)"
SEED_DEFAULTS = (
    SeedDefault("two-tier routing", "T1 first; T2 only if T1 is not high confidence; T1 + T2 when forced",
                "MOE_EXPERT_FORCE_ENSEMBLE", False, doc=f"{SEED_ARCHITECTURE}: Expert Routing"),
    SeedDefault("models of a tier", "all at once (\"otherwise all T2 models run in parallel\")", "MOE_EXPERT_PARALLEL",
                None, ours=1, doc=f"{SEED_SYSTEM}: Two-Tier System",
                why="deliberate: every model asked is a full call on the request's token budget, and the merger "
                    "keeps one result per category (the most confident), so the fleet asks a tier's first model "
                    "(best score first) and the others only as its failover; MOE_EXPERT_PARALLEL=N asks N side "
                    "by side, the original's behaviour for tiers of up to N models"),
    SeedDefault("EXPERT_TIMEOUT", "900 s", "MOE_EXPERT_TIMEOUT_S", 900.0, doc=_HISTORY),
    SeedDefault("MAX_EXPERT_OUTPUT_CHARS", "2400", "MOE_EXPERT_MAX_OUTPUT_CHARS", 2400,
                doc=f"{SEED_ARCHITECTURE}: Configuration Reference (Caching & Thresholds)"),
    SeedDefault("HISTORY_MAX_TURNS", "4", "MOE_EXPERT_HISTORY_TURNS", 4, doc=_HISTORY),
    SeedDefault("HISTORY_MAX_CHARS", "3000", "MOE_EXPERT_HISTORY_CHARS", 3000, doc=_HISTORY),
    SeedDefault("EXPERT_MIN_SCORE", "0.3", "MOE_SCORE_MIN", 0.3, doc=_ROUTING),
    SeedDefault("EXPERT_MIN_DATAPOINTS", "5", "MOE_SCORE_MIN_RATINGS", 5, doc=_ROUTING),
    SeedDefault("perf scores (moe:perf:*) TTL", "permanent", "MOE_SCORE_HALF_LIFE_S", 0,
                doc=f"{SEED_ARCHITECTURE}: Cache Key Reference"),
    SeedDefault("feedback: rating 3", "no effect", "MOE_SCORE_COUNT_NEUTRAL", False,
                doc=f"{SEED_SYSTEM}: 10. Feedback Effect"),
    SeedDefault("expert order", "sorted by performance score, best first", "MOE_SCORE_ORDER", True,
                doc=f"{SEED_SYSTEM}: expert_worker"),
)
