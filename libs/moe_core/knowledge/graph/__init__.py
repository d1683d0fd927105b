"""The knowledge graph shared by graph-rag, graph-ingest, gap-healer and the gateway's graph API."""

from moe_core.knowledge.graph.driver import GraphDB, GraphUnavailable
from moe_core.knowledge.graph.model import Provenance, Triple
from moe_core.knowledge.graph.store import GraphStore
from moe_core.knowledge.graph.vocab import ALL_TENANTS, RELATION_TYPES, SHARED_TENANT, visible_tenants

__all__ = [
    "ALL_TENANTS",
    "RELATION_TYPES",
    "SHARED_TENANT",
    "GraphDB",
    "GraphStore",
    "GraphUnavailable",
    "Provenance",
    "Triple",
    "visible_tenants",
]
