"""The knowledge graph shared by graph-rag, graph-ingest, gap-healer and the gateway's graph API.

The names below are loaded on first use (PEP 562): importing a light submodule (`audit`, `vocab`, `names`...)
does not load the Neo4j driver (~0.6-1.2 s of CPU, numpy included), which the gateway and the planner import
through the guardrails' audit but never open."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moe_core.knowledge.graph.driver import GraphDB, GraphUnavailable
    from moe_core.knowledge.graph.model import Provenance, Triple
    from moe_core.knowledge.graph.store import GraphStore
    from moe_core.knowledge.graph.vocab import ALL_TENANTS, RELATION_TYPES, SHARED_TENANT, visible_tenants

_HOME = {
    "GraphDB": "driver",
    "GraphUnavailable": "driver",
    "Provenance": "model",
    "Triple": "model",
    "GraphStore": "store",
    "ALL_TENANTS": "vocab",
    "RELATION_TYPES": "vocab",
    "SHARED_TENANT": "vocab",
    "visible_tenants": "vocab",
}

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


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
