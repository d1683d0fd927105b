from pydantic import Field

from moe_core.graph.settings import GraphSettings


class GraphRagSettings(GraphSettings):
    service_name: str = "graph-rag"
    http_port: int = 8106
    graph_cache_ttl_s: int = Field(default=300, ge=0, description="Redis cache of a question's context; 0 = off")
    graph_max_facts: int = Field(default=20, ge=1, le=200)
    graph_max_chains: int = Field(default=5, ge=0, le=50)
    graph_max_gaps: int = Field(default=3, ge=0, le=20, description="Unknown terms reported per question")
    graph_gap_ttl_s: int = Field(default=86_400, ge=1, description="A term is reported once per tenant per TTL")
    chroma_url: str = "http://127.0.0.1:8000"
    graph_chroma_collection: str = Field(default="", description="Chroma collection to search; empty = no lookup")
    graph_chroma_tenant_key: str = Field(default="tenant_id", description="Metadata key holding a document's tenant")
    graph_chroma_results: int = Field(default=3, ge=1, le=20)
    result_ttl_s: int = 3600
