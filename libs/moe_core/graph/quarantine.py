"""Quarantine: a triple that would touch a densely connected part of the graph, or that the write policy holds
(a protected domain, graph_ingest.policy), waits for an admin.
Approving writes it (in the same transaction as the decision); rejecting only records the decision. An item
not decided within its time to live (the original's 7 days, MOE_GRAPH_QUARANTINE_TTL_S) expires: it is
listed as `expired` and can no longer be decided."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from neo4j import AsyncManagedTransaction

from moe_core.graph.driver import tx_data
from moe_core.graph.model import Provenance, Triple
from moe_core.graph.names import quarantine_id
from moe_core.graph.store import GraphStore, Written

Status = Literal["pending", "approved", "rejected", "expired"]

# The item's state (LIST, GET): a pending item past its expiry is expired.


def blast_radius_exceeded(reach: int, threshold: int) -> bool:
    """A triple whose endpoints reach more than `threshold` entities in two hops is quarantined."""
    return threshold >= 0 and reach > threshold


CREATE = """
MERGE (q:Quarantine {id: $id})
ON CREATE SET q.tenant = $tenant, q.subject = $subject, q.relation = $relation, q.object = $object,
              q.confidence = $confidence, q.source = $source, q.domain = $domain, q.reach = $reach,
              q.threshold = $threshold, q.reason = $reason, q.status = 'pending', q.created_at = $now,
              q.response_id = $origin, q.expert = $expert, q.model = $model,
              q.expires_at = $expires_at
RETURN q.id AS id, q.created_at = $now AS created, q.status AS status
"""

LIST = """
MATCH (q:Quarantine)
WHERE q.tenant IN $tenants
WITH q, CASE WHEN q.status = 'pending' AND q.expires_at IS NOT NULL AND q.expires_at <= $now
             THEN 'expired' ELSE q.status END AS state
WHERE $status IS NULL OR state = $status
RETURN q {.*, status: state} AS item
ORDER BY q.created_at DESC, q.id
LIMIT $limit
"""

GET = """
MATCH (q:Quarantine {id: $id})
WHERE q.tenant IN $tenants
WITH q, CASE WHEN q.status = 'pending' AND q.expires_at IS NOT NULL AND q.expires_at <= $now
             THEN 'expired' ELSE q.status END AS state
RETURN q {.*, status: state} AS item
"""

DECIDE = """
MATCH (q:Quarantine {id: $id})
WHERE q.tenant IN $tenants AND q.status = 'pending' AND (q.expires_at IS NULL OR q.expires_at > $now)
SET q.status = $status, q.decided_at = $now, q.decided_by = $actor, q.note = $note
RETURN q {.*} AS item
"""

SET_RELATION = """
MATCH (q:Quarantine {id: $id})
SET q.relation_id = $relation_id
"""


@dataclass(frozen=True)
class Decision:
    item: dict[str, Any]
    written: Written | None


class Quarantine:
    def __init__(self, store: GraphStore) -> None:
        self.store = store

    async def hold(self, triple: Triple, prov: Provenance, reach: int, threshold: int,
                   ttl_s: float = 0, reason: str | None = None) -> tuple[str, bool]:
        """Put a triple in quarantine for `ttl_s` (0: until decided); idempotent per answer and triple.
        `reason`: why (default: the blast radius). Returns (id, newly created)."""
        now = time.time()
        qid = quarantine_id(prov.tenant, prov.origin, triple.subject, triple.relation, triple.object)
        reason = reason or f"blast radius: the triple reaches {reach} entities within two hops (limit {threshold})"
        rows = await self.store.db.write(
            CREATE, id=qid, tenant=prov.tenant, subject=triple.subject, relation=triple.relation,
            object=triple.object, confidence=triple.confidence, source=prov.source, domain=prov.domain, reach=reach,
            threshold=threshold, reason=reason, now=now, origin=prov.origin, expert=prov.expert,
            model=prov.model, expires_at=now + ttl_s if ttl_s > 0 else None)
        return qid, bool(rows[0]["created"])

    async def pending(self, tenants: list[str], status: Status | None = "pending",
                      limit: int = 50) -> list[dict[str, Any]]:
        rows = await self.store.db.read(LIST, tenants=tenants, status=status, limit=limit, now=time.time())
        return [r["item"] for r in rows]

    async def get(self, qid: str, tenants: list[str]) -> dict[str, Any] | None:
        rows = await self.store.db.read(GET, id=qid, tenants=tenants, now=time.time())
        return rows[0]["item"] if rows else None

    async def decide(self, qid: str, tenants: list[str], approve: bool, actor: str, note: str = "") -> Decision | None:
        """Approve (write the triple) or reject a pending item. None: no pending item with this id."""

        async def work(tx: AsyncManagedTransaction) -> Decision | None:
            rows = await tx_data(tx, DECIDE, id=qid, tenants=tenants, status="approved" if approve else "rejected",
                                 now=time.time(), actor=actor, note=note)
            if not rows:
                return None
            item = rows[0]["item"]
            if not approve:
                return Decision(item, None)
            triple = Triple(subject=item["subject"], relation=item["relation"], object=item["object"],
                            confidence=item["confidence"])
            prov = Provenance(tenant=item["tenant"], source=item["source"], domain=item.get("domain") or "general",
                              origin=f"quarantine:{qid}", expert=item.get("expert"), model=item.get("model"))
            written = await self.store.write_in(tx, triple, prov)
            await tx_data(tx, SET_RELATION, id=qid, relation_id=written.id)
            return Decision({**item, "relation_id": written.id}, written)

        return await self.store.db.transaction(work)
