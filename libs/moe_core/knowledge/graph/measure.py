"""What the graph holds, counted for the graph metrics: entities and relations, quarantine items by status,
ontology gaps by state (the whole database: one fleet per Neo4j)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from neo4j import AsyncManagedTransaction

from moe_core.knowledge.graph.driver import GraphDB, tx_data
from moe_core.knowledge.graph.gaps import Gaps

SIZE = """
CALL () { MATCH (e:Entity) RETURN count(e) AS entities }
CALL () { MATCH ()-[r:REL]->() RETURN count(r) AS relations }
RETURN entities, relations
"""

# one tenant's entities and relations, counted by the graph itself (index lookups, O(the tenant's size)): the drift
# checks' evidence, independent of what a writer says it wrote (checks.RESOLVE_MANY_COUNTED counts the same)
TENANT_SIZE = """
CALL () { MATCH (e:Entity {tenant: $tenant}) RETURN count(e) AS entities }
CALL () { MATCH ()-[r:REL {tenant: $tenant}]->() RETURN count(r) AS relations }
RETURN entities, relations
"""

QUARANTINE = """
MATCH (q:Quarantine)
RETURN CASE WHEN q.status = 'pending' AND q.expires_at IS NOT NULL AND q.expires_at <= $now THEN 'expired'
            ELSE q.status END AS status, count(q) AS n
"""

QUARANTINE_STATUSES = ("pending", "approved", "rejected", "expired")


@dataclass(frozen=True)
class GraphCounts:
    entities: int
    relations: int
    quarantine: dict[str, int]
    gaps: dict[str, int]


async def count_graph(db: GraphDB) -> GraphCounts:
    size = (await db.read(SIZE))[0]
    held = {r["status"]: int(r["n"]) for r in await db.read(QUARANTINE, now=time.time())}
    return GraphCounts(entities=int(size["entities"]), relations=int(size["relations"]),
                       quarantine={s: held.get(s, 0) for s in QUARANTINE_STATUSES}, gaps=await Gaps(db).counts())


async def tenant_size(db: GraphDB, tenant: str) -> dict[str, int]:
    """One tenant's entities and relations (index lookups): the before and after of an ingest run."""
    return size_of((await db.read(TENANT_SIZE, tenant=tenant))[0])


async def tenant_size_in(tx: AsyncManagedTransaction, tenant: str) -> dict[str, int]:
    """tenant_size inside an open transaction: what the tenant holds with the transaction's own writes."""
    return size_of((await tx_data(tx, TENANT_SIZE, tenant=tenant))[0])


def size_of(row: dict[str, Any]) -> dict[str, int]:
    """The counts of a row of TENANT_SIZE (or of a read that counts as it does)."""
    return {"entities": int(row["entities"]), "relations": int(row["relations"])}
