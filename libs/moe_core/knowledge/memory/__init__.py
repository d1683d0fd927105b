"""Tenant documents ("scoped memory"): the filter vocabulary shared by planner, graph-rag and gateway,
the Chroma collection they share, and the filtered lookup both graph-rag and the gateway's search run."""

from moe_core.knowledge.memory.filters import (
    CATEGORY_DOMAINS,
    FILTER_FIELDS,
    FilterError,
    MemoryFilters,
    TimeRange,
    parse_filters,
    where,
    where_document,
)
from moe_core.knowledge.memory.store import collection_name, open_collection

__all__ = ["CATEGORY_DOMAINS", "FILTER_FIELDS", "FilterError", "MemoryFilters", "TimeRange", "collection_name",
           "open_collection", "parse_filters", "where", "where_document"]
