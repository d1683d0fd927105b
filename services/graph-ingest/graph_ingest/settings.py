from pydantic import Field

from moe_core.graph.settings import GraphSettings


class GraphIngestSettings(GraphSettings):
    service_name: str = "graph-ingest"
    http_port: int = 8107
    graph_max_triples: int = Field(default=8, ge=1, le=8, description="Triples extracted per answer")
    graph_blast_radius_max: int = Field(
        default=30, ge=0, description="Quarantine a triple whose endpoints reach more entities in two hops")
    graph_ingest_role: str = Field(default="ingest", description="MODEL_ASSIGNMENTS role; falls back to default")
    graph_ingest_max_tokens: int = Field(default=400, ge=32, description="Token budget of the extraction")
    graph_ingest_timeout_s: float = Field(default=60.0, gt=0, description="Timeout of the extraction call")
    graph_trust_recompute_s: float = Field(default=3600.0, ge=0, description="Trust recomputation period; 0 = off")
    graph_trust_page_size: int = Field(default=500, ge=1, le=10_000, description="Relations per page of the "
                                       "trust recomputation")
    ingest_memo_ttl_s: int = Field(default=86_400, ge=60, description="How long extracted triples are remembered")
