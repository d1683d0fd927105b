"""Quarantine: a triple that would touch a densely connected part of the graph, or that the write policy holds
(a protected domain, moe_core.policy.learned: a triple graph-ingest learned, or a gap-healer classification),
waits for admins.
Four-eyes: an item needs approvals by as many distinct principals as the policy asks for its domains
(policy/opa/quarantine.rego: two for medical or legal); each approval is kept on the item (principal, key,
time, note), a principal counts once whichever of its keys it uses, and the approval that reaches the number
writes the triple in the same transaction. One rejection is final (it writes nothing); the rejection of a gap-healer
classification marks its ontology gap `rejected` in the same transaction (moe_core.knowledge.graph.gaps). An item
not decided within its time to live (the original's 7 days, MOE_GRAPH_QUARANTINE_TTL_S) expires: it is
listed as `expired` and can no longer be decided."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from neo4j import AsyncManagedTransaction

from moe_core.knowledge.graph.driver import tx_data
from moe_core.knowledge.graph.gaps import review_rejected_in
from moe_core.knowledge.graph.model import Provenance, Triple
from moe_core.knowledge.graph.names import quarantine_id
from moe_core.knowledge.graph.store import GraphStore, Written

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
              q.expires_at = $expires_at, q.domains = $domains, q.submitted_by = $submitted_by,
              q.entity_type = $entity_type
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

# One approval by one principal: the item's write lock first (SET), then the checks on what is committed now, so
# two approvals at once are counted one after the other and the item is written once.
APPROVE = """
MATCH (q:Quarantine {id: $id})
WHERE q.tenant IN $tenants
SET q.approval_seq = coalesce(q.approval_seq, 0) + 1
WITH q
WHERE q.status = 'pending' AND (q.expires_at IS NULL OR q.expires_at > $now)
  AND NOT $principal IN coalesce(q.approved_by, [])
SET q.approved_by = coalesce(q.approved_by, []) + $principal,
    q.approved_keys = coalesce(q.approved_keys, []) + $key_id,
    q.approved_at = coalesce(q.approved_at, []) + $now,
    q.approval_notes = coalesce(q.approval_notes, []) + $note,
    q.approvals_required = $required
WITH q, size(q.approved_by) >= $required AS complete
SET q.status = CASE WHEN complete THEN 'approved' ELSE q.status END,
    q.decided_at = CASE WHEN complete THEN $now ELSE q.decided_at END,
    q.decided_by = CASE WHEN complete THEN $actor ELSE q.decided_by END,
    q.note = CASE WHEN complete THEN $note ELSE q.note END
RETURN q {.*} AS item, complete
"""

SET_RELATION = """
MATCH (q:Quarantine {id: $id})
SET q.relation_id = $relation_id
"""


@dataclass(frozen=True)
class Decision:
    item: dict[str, Any]
    written: Written | None
    gap: dict[str, Any] | None = None  # a rejected classification's ontology gap, as the rejection left it


class Quarantine:
    def __init__(self, store: GraphStore) -> None:
        self.store = store

    async def hold(self, triple: Triple, prov: Provenance, reach: int, threshold: int,
                   ttl_s: float = 0, reason: str | None = None, domains: list[str] | None = None,
                   submitted_by: str | None = None) -> tuple[str, bool]:
        """Put a triple in quarantine for `ttl_s` (0: until decided); idempotent per answer and triple.
        `reason`: why (default: the blast radius); `domains`: the ones the server resolved for it (they decide how
        many approvals it needs); `submitted_by`: the principal whose text it was learned from (it may not approve
        it). Returns (id, newly created)."""
        qid, params = _held(triple, prov, reach, threshold, ttl_s, reason, domains, submitted_by)
        rows = await self.store.db.write(CREATE, **params)
        return qid, bool(rows[0]["created"])

    async def hold_in(self, tx: AsyncManagedTransaction, triple: Triple, prov: Provenance, reach: int,
                      threshold: int, ttl_s: float = 0, reason: str | None = None, domains: list[str] | None = None,
                      submitted_by: str | None = None) -> tuple[str, bool]:
        """hold() inside an open transaction (a writer that writes a batch's triples and holds in one)."""
        qid, params = _held(triple, prov, reach, threshold, ttl_s, reason, domains, submitted_by)
        rows = await tx_data(tx, CREATE, **params)
        return qid, bool(rows[0]["created"])

    async def pending(self, tenants: list[str], status: Status | None = "pending",
                      limit: int = 50) -> list[dict[str, Any]]:
        rows = await self.store.db.read(LIST, tenants=tenants, status=status, limit=limit, now=time.time())
        return [r["item"] for r in rows]

    async def get(self, qid: str, tenants: list[str]) -> dict[str, Any] | None:
        rows = await self.store.db.read(GET, id=qid, tenants=tenants, now=time.time())
        return rows[0]["item"] if rows else None

    async def approve(self, qid: str, tenants: list[str], principal: str, key_id: str, actor: str, note: str,
                      required: int) -> Decision | None:
        """One principal's approval of a pending item; the one that reaches `required` approvals writes the triple
        (Decision.written). None: no pending item with this id, or this principal approved it already."""

        async def work(tx: AsyncManagedTransaction) -> Decision | None:
            rows = await tx_data(tx, APPROVE, id=qid, tenants=tenants, principal=principal, key_id=key_id,
                                 now=time.time(), note=note, required=required, actor=actor)
            if not rows:
                return None
            item = rows[0]["item"]
            if not rows[0]["complete"]:
                return Decision(item, None)
            return await self._write(tx, qid, item)

        return await self.store.db.transaction(work)

    async def _write(self, tx: AsyncManagedTransaction, qid: str, item: dict[str, Any]) -> Decision:
        triple = Triple(subject=item["subject"], relation=item["relation"], object=item["object"],
                        confidence=item["confidence"])
        prov = Provenance(tenant=item["tenant"], source=item["source"], domain=item.get("domain") or "general",
                          origin=f"quarantine:{qid}", expert=item.get("expert"), model=item.get("model"),
                          entity_type=item.get("entity_type") or "Concept")  # a new entity's type (a gap's class)
        written = await self.store.write_in(tx, triple, prov)
        await tx_data(tx, SET_RELATION, id=qid, relation_id=written.id)
        return Decision({**item, "relation_id": written.id}, written)

    async def reject(self, qid: str, tenants: list[str], actor: str, note: str = "", *,
                     principal: str | None = None, key_id: str | None = None) -> Decision | None:
        """Reject a pending item (final: nothing is written); a gap-healer classification's ontology gap becomes
        `rejected` by `principal` in the same transaction (Decision.gap). None: no pending item with this id."""

        async def work(tx: AsyncManagedTransaction) -> Decision | None:
            rows = await tx_data(tx, DECIDE, id=qid, tenants=tenants, status="rejected", now=time.time(), actor=actor,
                                 note=note)
            if not rows:
                return None
            item = rows[0]["item"]
            return Decision(item, None, await review_rejected_in(tx, item, principal, key_id, note))

        return await self.store.db.transaction(work)


def _held(triple: Triple, prov: Provenance, reach: int, threshold: int, ttl_s: float, reason: str | None,
          domains: list[str] | None, submitted_by: str | None) -> tuple[str, dict[str, Any]]:
    """A quarantine item's id and the parameters of its CREATE."""
    now = time.time()
    qid = quarantine_id(prov.tenant, prov.origin, triple.subject, triple.relation, triple.object)
    reason = reason or f"blast radius: the triple reaches {reach} entities within two hops (limit {threshold})"
    return qid, {"id": qid, "tenant": prov.tenant, "subject": triple.subject, "relation": triple.relation,
                 "object": triple.object, "confidence": triple.confidence, "source": prov.source,
                 "domain": prov.domain, "reach": reach, "threshold": threshold, "reason": reason, "now": now,
                 "origin": prov.origin, "expert": prov.expert, "model": prov.model,
                 "expires_at": now + ttl_s if ttl_s > 0 else None,
                 "domains": sorted(set(domains)) if domains else [prov.domain], "submitted_by": submitted_by,
                 "entity_type": prov.entity_type}
