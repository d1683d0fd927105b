"""Start-up of a graph service: constraints and indexes, the alias nodes of the entities, then the base ontology
(all idempotent)."""

from __future__ import annotations

import logging

from moe_core.knowledge.graph import ontology
from moe_core.knowledge.graph.alias_nodes import ensure_alias_nodes
from moe_core.knowledge.graph.driver import GraphDB
from moe_core.knowledge.graph.schema import ensure_schema

log = logging.getLogger(__name__)


async def prepare_graph(db: GraphDB, *, seed: bool = True) -> None:
    await ensure_schema(db)
    await ensure_alias_nodes(db)
    if seed and await ontology.seed(db):
        log.info("seeded the base ontology")
