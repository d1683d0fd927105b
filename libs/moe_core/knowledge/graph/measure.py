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

# TENANT_SIZE after the tenant's version (n: relations asserted, lex: entities made, epoch: entities deleted; every
# writer of entities and relations moves it), read first: a change committed between the two leaves a version older
# than the counts, so the next reader counts again (Sizes)
TENANT_SIZE_VERSIONED = """
OPTIONAL MATCH (v:GraphVersion {tenant: $tenant})
WITH [v.n, v.lex, v.epoch] AS version
CALL () { MATCH (e:Entity {tenant: $tenant}) RETURN count(e) AS entities }
CALL () { MATCH ()-[r:REL {tenant: $tenant}]->() RETURN count(r) AS relations }
RETURN version, entities, relations
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


@dataclass(frozen=True)
class Counted:
    """A tenant's entities and relations as the graph counted them, and the tenant's version they were counted at;
    `steps`: 0 for a count, else the writes since the last count whose makings were added to it (write_many.WRITE_MANY,
    each while the version showed no other writer), bounded by MAX_STEPS."""

    version: list[Any]
    counts: dict[str, int]
    steps: int = 0


# the writes a tenant's count is carried forward by before the graph counts it again: a write that changed the tenant
# without moving its version (none should) shows in a count's difference within this many of one writer's answers
MAX_STEPS = 100


async def counted_in(tx: AsyncManagedTransaction, tenant: str) -> Counted:
    """tenant_size inside an open transaction (with the transaction's own writes), and the tenant's version."""
    [row] = await tx_data(tx, TENANT_SIZE_VERSIONED, tenant=tenant)
    return Counted(list(row["version"]), size_of(row))


class Sizes:
    """The size a writer last counted each tenant at the end of its write, with the tenant's version then: its next
    "before" of the tenant while the version has not moved (plan_read.read_plan), where a count costs Neo4j a
    db hit per entity and relation of the tenant (issue 52). A count is carried forward by the writes that add to it
    (Counted.steps, at most MAX_STEPS); a write that moved no version would show in the next count's difference, never
    in none. The `keep` latest tenants."""

    def __init__(self, keep: int = 1024) -> None:
        self.keep = keep
        self._last: dict[str, Counted] = {}

    def last(self, tenant: str) -> Counted | None:
        return self._last.get(tenant)

    def counted(self, tenant: str, counted: Counted) -> None:
        """Note a count of a committed transaction (a rolled-back one's counts are not the graph's)."""
        self._last.pop(tenant, None)
        self._last[tenant] = counted
        while len(self._last) > self.keep:
            del self._last[next(iter(self._last))]


def size_of(row: dict[str, Any]) -> dict[str, int]:
    """The counts of a row of TENANT_SIZE (or of a read that counts as it does)."""
    return {"entities": int(row["entities"]), "relations": int(row["relations"])}
