from typing import Literal

from pydantic import Field

from moe_core.llm.housekeeping import HousekeepingSettings
from moe_core.policy.settings import EgressSettings
from moe_core.runtime.seed import SEED_ARCHITECTURE, SEED_SYSTEM, SeedDefault
from moe_core.runtime.settings import FleetSettings


class PlannerSettings(HousekeepingSettings, EgressSettings, FleetSettings):
    service_name: str = "planner"
    http_port: int = 8101
    planner_max_tasks: int = Field(default=4, ge=1, le=8, description="Most tasks a plan may hold")
    planner_max_tokens: int = Field(default=200, ge=16, description="Token budget of the planner call")
    planner_timeout_s: float = Field(default=300.0, gt=0, description="Planner call timeout (then the fallback "
                                     "plan; within the request's deadline: the shorter bounds it)")
    plan_ttl_s: int = Field(default=3600, description="How long a request's plan (or cache-hit answer) is "
                            "remembered for redeliveries")
    # semantic cache (docs/semantic-cache.md: thresholds chosen by cache_threshold_report.py)
    chroma_url: str = Field(default="http://127.0.0.1:8000", description="Chroma server (cache, router)")
    semantic_cache_enabled: bool = Field(default=True, description="Semantic cache: lookups, storing answers, "
                                          "flags")
    cache_embedding: Literal["static", "minilm"] = Field(default="static", description=(
        "The semantic cache's embedding: `static` (moe_core.knowledge.static_embedding, distilled from the packaged "
        "MiniLM: ~0.1 ms of CPU a question) or `minilm` (~4-8 ms). Graph-rag uses MiniLM either way. "
        "Entries of the other model are embedded again (static) or left out of the index (minilm)"))
    cache_hard_threshold: float = Field(default=0.16, ge=0, le=2, description="Cosine distance of a hard hit "
                                        "(MiniLM vectors)")
    cache_soft_threshold: float = Field(default=0.35, ge=0, le=2, description="Up to this: few-shot examples "
                                        "(MiniLM vectors)")
    cache_static_table_resident: bool = Field(default=True, description=(
        "Read every page of the static embedding's table (31 MB, memory-mapped, shared by a host's processes) at "
        "start-up, so it is in the start level of the planner's memory, not growth over its first thousands of "
        "questions as their tokens page it in. False: only the pages of tokens used are read"))
    cache_static_hard_threshold: float = Field(default=0.21, ge=0, le=2, description="Cosine distance of a hard "
                                               "hit (static vectors; docs/semantic-cache.md)")
    cache_static_soft_threshold: float = Field(default=0.21, ge=0, le=2, description="Up to this: few-shot "
                                               "examples (static vectors)")
    cache_few_shot_max: int = Field(default=2, ge=0, le=8, description="Few-shot examples per plan")
    cache_ttl_s: int = Field(default=7 * 86400, ge=60, description="Entries older than this are not used")
    cache_max_answer_chars: int = Field(default=20_000, ge=100, description="Longer answers are not cached")
    cache_min_answer_chars: int = Field(default=150, ge=0, description="Shorter answers are not cached")
    cache_index_tenant_max_mb: int = Field(default=64, ge=1, description="Memory of one tenant's entries in "
                                           "each replica's in-process cache index (estimated); past it the "
                                           "least recently used are evicted from the index")
    cache_pending_ttl_s: int = Field(default=3600, ge=60, description="How long a plan waits for its answer")
    embedding_cache_size: int = Field(default=4096, ge=1, description="Recent texts whose vectors the planner "
                                      "keeps in memory (about 1.5 KiB each; the router and the cache store reuse "
                                      "the lookup's vector from it)")
    cache_write_linger_ms: int = Field(default=1000, ge=0, le=5000, description="The Chroma write of a cache "
                                       "entry waits this long before an upsert so that concurrent entries share "
                                       "it (off the request path: the index reads the cache topic at once; "
                                       "Chroma spends ~15 ms of CPU per upsert call and ~1 ms per entry)")
    # plan cache (Redis) and routing without the planner model
    plan_cache_enabled: bool = Field(default=True, description="Reuse the planner model's plan of the same "
                                      "normalised question (Redis)")
    plan_cache_ttl_s: int = Field(default=1800, ge=1, description="How long a cached plan is reused")
    planner_patterns_retention_days: float = Field(default=180.0, gt=0, le=3650, description="Learned planner "
                                                   "patterns: an expert combination with no well-rated answer for "
                                                   "this long is forgotten (planner.learned_patterns)")
    planner_learned_patterns: int = Field(default=3, ge=0, le=10, description="Learned planner patterns: the most "
                                          "successful expert combinations named in the planner model's prompt "
                                          "(0: none)")
    router_enabled: bool = Field(default=True, description="Semantic router: a clear match skips the planner "
                                  "model")
    router_embedding: Literal["static", "minilm"] = Field(default="static", description=(
        "The router's embedding: `static` (the cache's table, ~0.1 ms a question) or `minilm` (~4-8 ms); each has "
        "its own threshold and margin, chosen on the labelled set (python -m bench.router_static)"))
    router_threshold: float = Field(default=0.33, ge=0, le=2, description="Distance of a clear route (static)")
    router_margin: float = Field(default=0.07, ge=0, le=2, description="Lead over the next category (static)")
    router_minilm_threshold: float = Field(default=0.55, ge=0, le=2, description="Distance of a clear route "
                                           "(MiniLM)")
    router_minilm_margin: float = Field(default=0.15, ge=0, le=2, description="Lead over the next category "
                                        "(MiniLM)")
    planner_skip_trivial: bool = Field(default=True, description="Trivial questions: one expert, no planner")
    planner_never_trivial_domains: str = Field(
        default="medical,legal", description="A question whose words belong to one of these knowledge domains "
        "(policy/domain-keywords.yaml; comma-separated, empty: none) is never trivial, however short: it is routed "
        "or planned, with the knowledge graph, the tenant's documents and the critic where they apply")
    planner_trivial_max_words: int = Field(default=15, ge=0, description="A question of at most this many words "
                                           "that asks for no reasoning and has one part is trivial")
    planner_graph_tasks: bool = Field(default=True, description="Add a knowledge-graph task to non-trivial plans")
    planner_research_tasks: bool = Field(default=True, description="The planner model may plan a web research task "
                                         "(a query) for questions that need current or external facts")

    def router_distances(self) -> tuple[float, float]:
        """(threshold, margin) of the router's embedding."""
        if self.router_embedding == "static":
            return self.router_threshold, self.router_margin
        return self.router_minilm_threshold, self.router_minilm_margin


_CACHE = f"{SEED_ARCHITECTURE}: Configuration Reference (Caching & Thresholds)"
_MEASURED = "docs/semantic-cache.md#measured-hit-and-false-hit-rates-per-threshold"
SEED_DEFAULTS = (
    SeedDefault("CACHE_HIT_THRESHOLD", "0.15", "MOE_CACHE_HARD_THRESHOLD", 0.15, ours=0.16, doc=_CACHE,
                why=f"measured ({_MEASURED}): on the labelled set of 68 paraphrases and 114 near misses, 0.16 "
                    "answers 64/68 paraphrases from the cache (0.14: 62/68) with 0/114 false hits (the guards)"),
    SeedDefault("SOFT_CACHE_THRESHOLD", "0.50", "MOE_CACHE_SOFT_THRESHOLD", 0.50, ours=0.35, doc=_CACHE,
                why=f"measured ({_MEASURED}): the lower-case scope pairs (same sentence, another subject) sit at "
                    "0.28-0.62 from each other; at 0.50 many of them would ride along as examples"),
    SeedDefault("SOFT_CACHE_MAX_EXAMPLES", "2", "MOE_CACHE_FEW_SHOT_MAX", 2, doc=_CACHE),
    SeedDefault("CACHE_MIN_RESPONSE_LEN", "150 chars", "MOE_CACHE_MIN_ANSWER_CHARS", 150, doc=_CACHE),
    SeedDefault("semantic cache (moe_fact_cache) TTL", "permanent (flagged if bad)", "MOE_CACHE_TTL_S", None,
                ours=7 * 86_400, doc=f"{SEED_ARCHITECTURE}: Cache Key Reference",
                why="structural: an entry is also the gateway's exact-repeat answer in Redis, which must not grow "
                    "without bound; an entry past 7 days costs one pipeline run, never a wrong answer (a bad "
                    "rating flags it at once, as in the original)"),
    SeedDefault("plan cache (moe:plan:*) TTL", "30 min", "MOE_PLAN_CACHE_TTL_S", 1800,
                doc=f"{SEED_ARCHITECTURE}: Cache Key Reference"),
    SeedDefault("planner patterns (moe:planner_success)", "180 days", "MOE_PLANNER_PATTERNS_RETENTION_DAYS", 180.0,
                doc=f"{SEED_ARCHITECTURE}: Cache Key Reference"),
    SeedDefault("complexity routing: trivial", "<= 15-word simple factual queries", "MOE_PLANNER_TRIVIAL_MAX_WORDS",
                15, doc=f"{SEED_ARCHITECTURE}: optimisations"),
    SeedDefault("planner subtasks", "1-4", "MOE_PLANNER_MAX_TASKS", 4, doc=f"{SEED_SYSTEM}: planner_node"),
    SeedDefault("PLANNER_TIMEOUT", "300 s", "MOE_PLANNER_TIMEOUT_S", 300.0,
                doc=f"{SEED_ARCHITECTURE}: Configuration Reference (History & Timeouts)"),
    SeedDefault("graph_rag node", "after every plan; skipped for trivial queries", "MOE_PLANNER_GRAPH_TASKS", True,
                doc=f"{SEED_ARCHITECTURE}: Node Descriptions, optimisations"),
)
