from pydantic import Field

from moe_core.knowledge.graph.settings import GraphSettings, QuarantineSettings
from moe_core.policy.settings import PolicyEngineSettings
from moe_core.runtime.seed import SEED_ARCHITECTURE, SEED_ENTERPRISE, SEED_SYSTEM, SeedDefault


class GraphIngestSettings(PolicyEngineSettings, QuarantineSettings, GraphSettings):  # learned triples' policy
    service_name: str = "graph-ingest"
    http_port: int = 8107
    graph_ingest_concurrency: int = Field(default=2, ge=1, description="Extraction calls one replica makes at "
                                          "once (the others wait)")
    graph_max_triples: int = Field(default=8, ge=1, le=8, description="Triples extracted per answer")
    graph_blast_radius_max: int = Field(
        default=30, ge=0, description="Quarantine a triple whose endpoints reach more entities in two hops")
    graph_ingest_role: str = Field(default="ingest", description="MODEL_ASSIGNMENTS role; falls back to default")
    graph_ingest_max_tokens: int = Field(default=400, ge=32, description="Token budget of the extraction")
    graph_ingest_timeout_s: float = Field(default=60.0, gt=0, description="Timeout of the extraction call")
    graph_trust_recompute_s: float = Field(default=3600.0, ge=0, description="Trust recomputation period; 0 = off")
    graph_trust_page_size: int = Field(default=500, ge=1, le=10_000, description="Relations per page of the "
                                       "trust recomputation")
    graph_ingest_skip_types: list[str] = Field(
        default=["language", "creative"], description="Knowledge types not learned from: an answer of this type "
        "(a translation, a creative text) states no facts, so its extraction call would cost tokens for nothing "
        "(issue 52); [] learns from every answer")
    ingest_memo_ttl_s: int = Field(default=86_400, ge=60, description="How long extracted triples are remembered")


_QUARANTINE = f"{SEED_ENTERPRISE}: Blast-Radius Estimation & Quarantine"
SEED_DEFAULTS = (
    SeedDefault("_BLAST_RADIUS_THRESHOLD", "reach > 20", "MOE_GRAPH_BLAST_RADIUS_MAX", 20, ours=30, doc=_QUARANTINE,
                why="measured (docs/architecture.md, python -m graph_ingest blast-radius-report): our base "
                    "ontology has 327 entities (the original's 104), 2-hop reach median 13, p90 22, p95 26, "
                    "max 47; at 20 more than a tenth of it are hubs (Cough, Ibuprofen, Warfarin: learning about "
                    "them would wait for an admin and mostly expire unseen), at 30 only the six real hubs"),
    SeedDefault("moe:quarantine TTL", "7 days", "MOE_GRAPH_QUARANTINE_TTL_S", 7 * 86_400, doc=_QUARANTINE),
    SeedDefault("triples per answer", "up to 8", "MOE_GRAPH_MAX_TRIPLES", 8, doc=f"{SEED_SYSTEM}: 8. GraphRAG"),
    SeedDefault("ingest semaphore", "limit 2 (background ingest calls)", "MOE_GRAPH_INGEST_CONCURRENCY", 2,
                doc=f"{SEED_ARCHITECTURE}: optimisations"),
)
