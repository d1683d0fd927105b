from pydantic import Field

from moe_core.knowledge.graph.settings import GraphSettings, QuarantineSettings
from moe_core.policy.settings import PolicyEngineSettings


class GapHealerSettings(PolicyEngineSettings, QuarantineSettings, GraphSettings):  # classifications' write policy
    service_name: str = "gap-healer"
    http_port: int = 8108
    gap_healer_role: str = Field(default="gap_healer", description="MODEL_ASSIGNMENTS role; falls back to default")
    gap_min_confidence: float = Field(default=0.5, ge=0, le=1, description="Classifications below are not written")
    gap_max_tokens: int = Field(default=200, ge=32, description="Token budget of the classification")
    gap_timeout_s: float = Field(default=60.0, gt=0, description="Timeout of the classification call")
    gap_context_words: int = Field(default=6, ge=0, le=500, description="Words of the question either side of "
                                   "each term that the classification call sees (its context, not the whole "
                                   "question; issue 52: 12 before, and one window from the first term to the last)")
    gap_batch_terms: int = Field(default=16, ge=1, le=64, description="Most terms one classification call holds: "
                                 "the unknown terms of several questions of a tenant share the call (the class list, "
                                 "most of its prompt, once); 16 = two questions of the most new terms one question "
                                 "sends (8), a reply a small model still keys term by term")
    gap_batch_wait_s: float = Field(default=2.0, ge=0, le=60, description="How long a batch of unknown terms waits "
                                    "for another question's to share its classification call, counted from the "
                                    "last question that joined (0: each question asks at once, alone). No request "
                                    "waits for it: learning lands this much later; a busy fleet fills the batch "
                                    "(MOE_GAP_BATCH_TERMS) before")
    gap_memo_ttl_s: int = Field(default=86_400, ge=60, description="How long a classification is remembered")
    gap_review_retry_after_s: float = Field(default=86_400.0, ge=0, description="After reviewers rejected a term's "
                                            "held classification, a new gap of the term waits this long before the "
                                            "term is classified again (without the rejected classes)")
    gap_max_review_rejections: int = Field(default=3, ge=1, description="After this many rejected classifications "
                                           "a term is not classified again by itself (it stays rejected until it "
                                           "is known otherwise, e.g. imported)")
    lint_page_size: int = Field(default=500, ge=1, le=10_000, description="Relations / entities per page of "
                                "a lint run")
    # The graph's maintenance schedule (gap_healer.schedule); run history in Postgres (MOE_POSTGRES_DSN).
    graph_schedule_enabled: bool = Field(default=True, description="Run lint and heal on their intervals")
    graph_lint_interval_s: float = Field(default=86_400.0, ge=0, description="Between scheduled lint runs; 0 = never")
    graph_heal_interval_s: float = Field(default=86_400.0, ge=0, description="Between scheduled heal runs; 0 = never")
    graph_schedule_tick_s: float = Field(default=60.0, gt=0, description="How often the scheduler checks what is "
                                         "due and refreshes the graph gauges")
    graph_schedule_run_at_start: bool = Field(default=False, description="A kind that never ran (no history) runs "
                                              "at start instead of one interval after it")
    graph_schedule_tenant: str = Field(default="*", min_length=1, description="Tenant scheduled runs cover "
                                   "('*' = every tenant)")
    graph_run_timeout_s: float = Field(default=3600.0, gt=0, description="A run longer than this fails (and frees "
                                       "the lock)")
    graph_heal_batch: int = Field(default=200, ge=1, le=10_000, description="Open gaps one heal run retries")
    graph_heal_retry_after_s: float = Field(default=600.0, ge=0, description="Open gaps younger than this (since "
                                            "their last attempt) are not retried yet")
