from pydantic import AliasChoices, Field

from moe_core.knowledge.graph.settings import GraphSettings
from moe_core.runtime.seed import SEED_ARCHITECTURE, SeedDefault


class GraphRagSettings(GraphSettings):
    service_name: str = "graph-rag"
    http_port: int = 8106
    graph_cache_ttl_s: int = Field(default=3600, ge=0, description="Redis cache of a question's context (keyed by "
                                   "the tenant's graph version: a changed graph is a new entry); 0 = off")
    graph_max_facts: int = Field(default=20, ge=1, le=200, description="Facts per context")
    graph_max_chains: int = Field(default=5, ge=0, le=50, description="Requirement chains per context")
    graph_max_gaps: int = Field(default=3, ge=0, le=20, description="Unknown terms reported per question")
    graph_gaps_generic: bool = Field(default=False, description="Also report unknown terms made only of generic "
                                     "words (graph_rag.generic: verbs, evaluative adjectives, aspect nouns: "
                                     "'formed', 'scientists study', 'economic value') as gaps and document lookup "
                                     "terms, as before issue 52; false: left out (a term with one other word, "
                                     "'steam engine', stays), the classification's tokens not spent on them")
    graph_gap_ttl_s: int = Field(default=86_400, ge=1, description="A term is reported once per tenant per TTL")
    chroma_url: str = Field(default="http://127.0.0.1:8000", description="Chroma server (tenant documents)")
    graph_documents: bool = Field(default=True, description="Add the tenant's documents (scoped by the plan's "
                                  "metadata_filters) to the context")
    graph_documents_presence_ttl_s: int = Field(
        default=300, ge=0, description="How long a finding that the tenant (with the shared scope) has no "
        "documents is trusted while the documents versions stay the same (then no Chroma call); 0 = ask Chroma")
    graph_chroma_collection: str = Field(
        default="", validation_alias=AliasChoices("MOE_MEMORY_COLLECTION", "MOE_GRAPH_CHROMA_COLLECTION",
                                                  "graph_chroma_collection"),
        description="Chroma collection of tenant documents; empty = the namespace's (moe-memory-<namespace>, "
                    "written by the gateway)")
    graph_chroma_tenant_key: str = Field(default="tenant_id", description="Metadata key holding a document's tenant")
    graph_chroma_results: int = Field(default=3, ge=1, le=20, description="Document chunks per question")
    graph_document_max_distance: float = Field(default=0.75, ge=0, le=2, description="Cosine distance up to "
                                               "which a chunk counts as near the question")
    graph_document_chars: int = Field(default=1000, ge=100, le=20_000, description="Characters of a chunk "
                                      "shown to the judge")
    result_ttl_s: int = Field(default=3600, description="How long a task's result is remembered for redeliveries")


SEED_DEFAULTS = (
    SeedDefault("GraphRAG cache (moe:graph:*)", "TTL 1 h", "MOE_GRAPH_CACHE_TTL_S", 3600,
                doc=f"{SEED_ARCHITECTURE}: Cache Key Reference"),
)
