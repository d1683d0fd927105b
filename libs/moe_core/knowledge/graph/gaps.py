"""Ontology gaps as state in the graph: one `OntologyGap` node per tenant and normalised term, written by the
gap-healer when a gap arrives and when it is decided. States: `open` (received; not classified yet, or the
model call failed: the scheduled heal run retries it), `healed` (an entity now exists), `rejected` (no classification
stands: the model did not classify it as a known kind of entity, or reviewers rejected the classification held for
them: `rejected_by` names the reviewing principal, `review_rejections` counts such rejections and `rejected_classes`
the classes refused; a later question may have it classified again, gap_healer.retry decides when), `quarantined` (its
classification waits in the quarantine for review, `quarantine_id`: a protected domain, or refused by the write
policy; once approved, the next gap of the term finds it known and marks it healed). `asked_by` is the principal whose
question first raised the gap (its `context`), kept for the heal run's retry. Read by the operators' endpoint and the
graph metrics."""

from __future__ import annotations

import time
from typing import Any, Literal

from neo4j import AsyncManagedTransaction

from moe_core.knowledge.graph.driver import GraphDB, tx_data
from moe_core.knowledge.graph.names import _digest, clean_name, normalize
from moe_core.knowledge.graph.vocab import ALL_TENANTS

GapState = Literal["open", "healed", "rejected", "quarantined"]
GAP_STATES: tuple[GapState, ...] = ("open", "healed", "rejected", "quarantined")
HEALER = "service:gap-healer"  # `decided_by` of the gap-healer's own decisions (a reviewer's: their principal)

SEEN = """
MERGE (g:OntologyGap {id: $id})
ON CREATE SET g.tenant = $tenant, g.term = $term, g.key = $key, g.state = 'open', g.first_seen = $now,
              g.seen = 0, g.context = $context, g.response_id = $response_id, g.asked_by = $asked_by
SET g.seen = g.seen + 1, g.last_seen = $now
RETURN g {.*} AS gap
"""

DECIDE = """
MATCH (g:OntologyGap {id: $id})
SET g.state = $state, g.decided_at = $now, g.reason = $reason, g.entity = $entity, g.parent = $parent,
    g.last_error = null, g.quarantine_id = coalesce($quarantine_id, g.quarantine_id), g.decided_by = $actor
"""

# Reviewers rejected the classification held for the gap (run in the rejection's transaction, and by the gap-healer
# for an item rejected before this was recorded): only the gap still waiting for that item changes (a gap held
# before `quarantine_id` was kept names the item in its reason).
REVIEW_REJECTED = """
MATCH (g:OntologyGap {id: $id})
WHERE g.state = 'quarantined' AND (g.quarantine_id = $qid OR (g.quarantine_id IS NULL AND g.reason CONTAINS $qid))
SET g.state = 'rejected', g.decided_at = $now, g.reason = $reason, g.quarantine_id = $qid,
    g.decided_by = $principal, g.rejected_by = $principal, g.rejected_key = $key_id, g.reviewed_at = $now,
    g.review_note = $note, g.review_rejections = coalesce(g.review_rejections, 0) + 1,
    g.rejected_classes = coalesce(g.rejected_classes, []) + [$parent]
RETURN g {.*} AS gap
"""

# The classification held for the gap expired unreviewed: the gap is open again (the next gap holds it anew).
REOPEN = """
MATCH (g:OntologyGap {id: $id})
WHERE g.state = 'quarantined' AND (g.quarantine_id = $qid OR (g.quarantine_id IS NULL AND g.reason CONTAINS $qid))
SET g.state = 'open', g.quarantine_id = $qid, g.decided_at = $now, g.reason = $reason, g.decided_by = $actor
RETURN g {.*} AS gap
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
RETURN g {.id, .tenant, .term, .context, .response_id, .asked_by} AS gap
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


def rejection_reason(item: dict[str, Any], note: str) -> str:
    triple = f"{item.get('subject')} {item.get('relation')} {item.get('object')}"
    return f"reviewers rejected {triple} (quarantine {item.get('id')})" + (f": {note}" if note else "")


async def review_rejected_in(tx: AsyncManagedTransaction, item: dict[str, Any], principal: str | None,
                             key_id: str | None, note: str) -> dict[str, Any] | None:
    """Gaps.review_rejected inside `tx` (the quarantine's rejection: one transaction for the item and its gap)."""
    if item.get("source") != "gap_healer":
        return None
    rows = await tx_data(tx, REVIEW_REJECTED, id=gap_id(str(item["tenant"]), str(item["subject"])), qid=item["id"],
                         reason=rejection_reason(item, note)[:500], principal=principal, key_id=key_id,
                         note=note[:2000], parent=item.get("object"), now=time.time())
    return rows[0]["gap"] if rows else None


class Gaps:
    def __init__(self, db: GraphDB) -> None:
        self.db = db

    async def seen(self, tenant: str, term: str, context: str, response_id: str,
                   asked_by: str | None = None) -> dict[str, Any]:
        """Record (or count again) a gap; returns the gap as it is now (its `state`, the review's traces)."""
        rows = await self.db.write(SEEN, id=gap_id(tenant, term), tenant=tenant, term=clean_name(term),
                                   key=normalize(term), context=context[:2000], response_id=response_id,
                                   asked_by=asked_by, now=time.time())
        gap: dict[str, Any] = rows[0]["gap"]
        return gap

    async def decide(self, tenant: str, term: str, state: GapState, reason: str, *, entity: str | None = None,
                     parent: str | None = None, quarantine_id: str | None = None, actor: str = HEALER) -> None:
        await self.db.write(DECIDE, id=gap_id(tenant, term), state=state, reason=reason[:500], entity=entity,
                            parent=parent, quarantine_id=quarantine_id, actor=actor, now=time.time())

    async def review_rejected(self, item: dict[str, Any], principal: str | None, key_id: str | None,
                              note: str) -> dict[str, Any] | None:
        """The gap whose held classification (quarantine `item`) reviewers rejected, now `rejected`; None: no gap
        waits for this item."""
        return await self.db.transaction(lambda tx: review_rejected_in(tx, item, principal, key_id, note))

    async def reopen(self, tenant: str, term: str, qid: str, reason: str,
                     actor: str = HEALER) -> dict[str, Any] | None:
        """The gap whose held classification expired unreviewed, `open` again; None: it no longer waited for it."""
        rows = await self.db.write(REOPEN, id=gap_id(tenant, term), qid=qid, reason=reason[:500], actor=actor,
                                   now=time.time())
        return rows[0]["gap"] if rows else None

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
