"""Ontology gaps as state in the graph: one `OntologyGap` node per tenant and normalised term, written by the
gap-healer when a gap arrives and when it is decided. States: `open` (received; not classified yet, or the
model call failed: the scheduled heal run retries it), `healed` (an entity now exists), `rejected` (the model
did not classify it as a known kind of entity), `quarantined` (its classification waits in the quarantine for
review: a protected domain, or refused by the write policy; once approved, the next gap of the term finds it known
and marks it healed). Read by the operators' endpoint and the graph metrics."""

from __future__ import annotations

import time
from typing import Any, Literal

from moe_core.graph.driver import GraphDB
from moe_core.graph.names import _digest, clean_name, normalize
from moe_core.graph.vocab import ALL_TENANTS

GapState = Literal["open", "healed", "rejected", "quarantined"]
GAP_STATES: tuple[GapState, ...] = ("open", "healed", "rejected", "quarantined")

SEEN = """
MERGE (g:OntologyGap {id: $id})
ON CREATE SET g.tenant = $tenant, g.term = $term, g.key = $key, g.state = 'open', g.first_seen = $now,
              g.seen = 0, g.context = $context, g.response_id = $response_id
SET g.seen = g.seen + 1, g.last_seen = $now
RETURN g.state AS state
"""

DECIDE = """
MATCH (g:OntologyGap {id: $id})
SET g.state = $state, g.decided_at = $now, g.reason = $reason, g.entity = $entity, g.parent = $parent,
    g.last_error = null
"""

FAILED = """
MATCH (g:OntologyGap {id: $id})
WHERE g.state = 'open'
SET g.last_error = $error, g.attempts = coalesce(g.attempts, 0) + 1, g.last_attempt = $now
"""

LIST = """
MATCH (g:OntologyGap)
WHERE ($all OR g.tenant IN $tenants) AND ($state IS NULL OR g.state = $state)
RETURN g {.*} AS gap
ORDER BY g.last_seen DESC, g.id
LIMIT $limit
"""

OPEN = """
MATCH (g:OntologyGap)
WHERE g.state = 'open' AND coalesce(g.last_attempt, g.first_seen) <= $before AND ($all OR g.tenant = $tenant)
RETURN g {.id, .tenant, .term, .context, .response_id} AS gap
ORDER BY g.first_seen, g.id
LIMIT $limit
"""

COUNTS = """
MATCH (g:OntologyGap)
WHERE $all OR g.tenant = $tenant
RETURN g.state AS state, count(g) AS n
"""


def gap_id(tenant: str, term: str) -> str:
    return "g" + _digest("gap", tenant, normalize(term))


class Gaps:
    def __init__(self, db: GraphDB) -> None:
        self.db = db

    async def seen(self, tenant: str, term: str, context: str, response_id: str) -> str:
        """Record (or count again) a gap; returns its state."""
        rows = await self.db.write(SEEN, id=gap_id(tenant, term), tenant=tenant, term=clean_name(term),
                                   key=normalize(term), context=context[:2000], response_id=response_id,
                                   now=time.time())
        return str(rows[0]["state"])

    async def decide(self, tenant: str, term: str, state: GapState, reason: str, *, entity: str | None = None,
                     parent: str | None = None) -> None:
        await self.db.write(DECIDE, id=gap_id(tenant, term), state=state, reason=reason[:500], entity=entity,
                            parent=parent, now=time.time())

    async def failed(self, tenant: str, term: str, error: str) -> None:
        """A classification attempt that failed (model unavailable): the gap stays open."""
        await self.db.write(FAILED, id=gap_id(tenant, term), error=error[:500], now=time.time())

    async def find(self, tenants: list[str] | None, state: GapState | None, limit: int) -> list[dict[str, Any]]:
        """Gaps of these tenants (None: every tenant), newest first."""
        rows = await self.db.read(LIST, all=tenants is None, tenants=tenants or [], state=state, limit=limit)
        return [r["gap"] for r in rows]

    async def open(self, tenant: str, older_than_s: float, limit: int) -> list[dict[str, Any]]:
        """Open gaps of `tenant` ('*': of every tenant) not attempted for `older_than_s`, oldest first."""
        rows = await self.db.read(OPEN, all=tenant == ALL_TENANTS, tenant=tenant, before=time.time() - older_than_s,
                                  limit=limit)
        return [r["gap"] for r in rows]

    async def counts(self, tenant: str = ALL_TENANTS) -> dict[str, int]:
        """Gaps by state, of `tenant` ('*': of every tenant)."""
        found = {r["state"]: int(r["n"]) for r in await self.db.read(COUNTS, all=tenant == ALL_TENANTS, tenant=tenant)}
        return {state: found.get(state, 0) for state in GAP_STATES}
