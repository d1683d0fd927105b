from pydantic import Field

from moe_core.runtime.seed import SEED_ARCHITECTURE, SEED_SYSTEM, SeedDefault
from moe_core.runtime.settings import FleetSettings


class MergerSettings(FleetSettings):
    service_name: str = "merger"
    http_port: int = 8103
    judge_max_tokens: int = Field(default=512, ge=16, description="Default token budget of the judge")
    judge_timeout_s: float = Field(default=900.0, gt=0, description="A judge (and thinking) model call's timeout "
                                   "(within the request's deadline: the shorter bounds it)")
    deadline_poll_s: float = Field(default=0.25, gt=0, description="How often the deadline sweeper looks")
    state_ttl_s: int = Field(default=3600, description="How long a request's state stays in Redis")
    claim_margin_s: float = Field(default=10.0, gt=0, description="Extra claim time past the deadline")
    claim_lease_s: float = Field(default=10.0, gt=0, description="Composing an answer holds a lease this long, "
                                 "renewed while it works: a replica that dies hands the request on after it")
    thinking: bool = Field(default=True, description="A reasoning trace before the judge")
    judge_insight: bool = Field(default=True, description="The judge, merging two or more results, may end with "
                                "an insight block (kept as a :Synthesis node, never shown); false saves its rule's "
                                "prompt words")
    judge_cache_example_always: bool = Field(default=False, description="The judge sees the semantic cache's "
                                             "nearest example (an earlier answer to a similar question, its "
                                             "lowest-priority source) even when every expert task answered with "
                                             "high confidence (false: only when an expert failed or was unsure, the "
                                             "gaps it can fill; issue 52: ~28 tokens of a full request)")
    thinking_all_high: bool = Field(default=False, description="The original's rule as written: the thinking step "
                                    "for every plan of more than one task, even when every task's expert answered "
                                    "with high confidence and no other source than the knowledge graph came back "
                                    "(false: skipped then, nothing to weigh: the judge's trust rule puts the graph's "
                                    "facts first; issue 52)")
    thinking_max_tokens: int = Field(default=80, ge=16, description="Token budget of the thinking step: its four "
                                     "short lines (its notes are paid twice, as its completion and in the judge's "
                                     "prompt; issue 52: 256 let a model write 200 words of them)")
    thinking_time_share: float = Field(default=0.5, gt=0, le=1, description="Share of the time left it may use")
    research_fallback: bool = Field(default=True, description="Search the web for low-confidence expert results")
    research_fallback_min_s: float = Field(default=5.0, ge=0, description="Time left needed to start a fallback")


SEED_DEFAULTS = (
    SeedDefault("JUDGE_TIMEOUT", "900 s", "MOE_JUDGE_TIMEOUT_S", 900.0,
                doc=f"{SEED_ARCHITECTURE}: Configuration Reference (History & Timeouts)"),
    SeedDefault("thinking_node", "for plans with > 1 task or a low-confidence expert (and force_think modes)",
                "MOE_THINKING", True, doc=f"{SEED_SYSTEM}: thinking_node"),
    SeedDefault("thinking_node", "active if > 1 task, whatever the experts' confidence", "MOE_THINKING_ALL_HIGH",
                True, ours=False, doc=f"{SEED_SYSTEM}: thinking_node",
                why="issue 52: with every expert task answered high and no other source but graph facts, the step's "
                    "work (agreement, contradictions, trust, gaps) is empty: the judge reads every source whole "
                    "with the trust order (graph > expert); its call and its notes in the judge's prompt were ~90 "
                    "of a two-expert request's tokens, ~380 with graph facts at 200-word answers; the judge still "
                    "merges, force_think modes still think"),
    SeedDefault("synthesis_insight", "optional <SYNTHESIS_INSIGHT> block of the judge, stripped, kept as :Synthesis",
                "MOE_JUDGE_INSIGHT", True, doc=f"{SEED_ARCHITECTURE}: Node Descriptions (merger_node)"),
    SeedDefault("research_fallback", "web research for each CONFIDENCE: low expert result", "MOE_RESEARCH_FALLBACK",
                True, doc=f"{SEED_SYSTEM}: research_fallback_node"),
    SeedDefault("critic_node", "only medical_consult / legal_advisor", "moe_core.contracts:CRITIC_CATEGORIES",
                ["legal_advisor", "medical_consult"], doc=f"{SEED_ARCHITECTURE}: Node Descriptions"),
)
