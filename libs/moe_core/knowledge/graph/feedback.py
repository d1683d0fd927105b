"""User feedback on relations (4-5 verified, 1-2 flagged) and trust recomputation in pages."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from moe_core.knowledge.graph.driver import GraphDB
from moe_core.knowledge.graph.store import SET_TRUST, SET_TRUST_BUMP
from moe_core.knowledge.graph.trust import TrustPolicy

Mark = Literal["verified", "flagged"]

# Only the tenant's own relations change: one tenant's rating never alters shared or foreign knowledge.
VERIFY = """
UNWIND $ids AS rid
MATCH ()-[r:REL {id: rid}]->()
WHERE r.tenant = $tenant AND NOT $origin IN coalesce(r.feedback_by, [])
SET r.verified = true, r.flagged = false, r.version = r.version + 1,
    r.feedback_by = (coalesce(r.feedback_by, []) + [$origin])[-20..], r.feedback_at = $now
RETURN r.id AS id, r.confidence AS confidence, r.source AS source, r.asserted_at AS asserted_at,
       r.verified AS verified
"""

FLAG = """
UNWIND $ids AS rid
MATCH ()-[r:REL {id: rid}]->()
WHERE r.tenant = $tenant AND NOT $origin IN coalesce(r.feedback_by, [])
SET r.flagged = true, r.verified = false, r.version = r.version + 1,
    r.feedback_by = (coalesce(r.feedback_by, []) + [$origin])[-20..], r.feedback_at = $now
RETURN r.id AS id, r.confidence AS confidence, r.source AS source, r.asserted_at AS asserted_at,
       r.verified AS verified
"""

TRUST_PAGE = """
MATCH ()-[r:REL]->()
WHERE r.id > $after
RETURN r.id AS id, r.confidence AS confidence, r.source AS source, r.asserted_at AS asserted_at,
       r.verified AS verified, r.trust AS trust
ORDER BY r.id
LIMIT $limit
"""

BUMP_ALL = """
MATCH (v:GraphVersion)
SET v.n = coalesce(v.n, 0) + 1
"""


def mark_for(rating: int) -> Mark | None:
    """4-5 verify, 1-2 flag, 3 changes nothing."""
    if rating >= 4:
        return "verified"
    if rating <= 2:
        return "flagged"
    return None


@dataclass(frozen=True)
class Recomputed:
    scanned: int
    changed: int
    pages: int


def _trust_rows(rows: list[dict[str, Any]], policy: TrustPolicy, now: float) -> list[dict[str, Any]]:
    return [{"id": r["id"], "trust": policy.trust(confidence=r["confidence"] or 0.0, source=r["source"] or "extracted",
                                                  asserted_at=r["asserted_at"] or now, verified=bool(r["verified"]),
                                                  now=now)} for r in rows]


async def apply_feedback(db: GraphDB, policy: TrustPolicy, tenant: str, ids: list[str], rating: int,
                         origin: str) -> tuple[Mark | None, list[str]]:
    """Mark the tenant's relations among `ids`; returns the mark and the ids that changed now."""
    mark = mark_for(rating)
    if mark is None or not ids:
        return mark, []
    now = time.time()
    rows = await db.write(VERIFY if mark == "verified" else FLAG, ids=ids, tenant=tenant, origin=origin, now=now)
    if rows:
        await db.write(SET_TRUST_BUMP, rows=_trust_rows(rows, policy, now), tenants=[tenant])
    return mark, [r["id"] for r in rows]


async def recompute_trust(db: GraphDB, policy: TrustPolicy, page_size: int = 500,
                          now: float | None = None) -> Recomputed:
    """Recompute every relation's trust, one page of relations at a time (ordered by id)."""
    now = time.time() if now is None else now
    after, scanned, changed, pages = "", 0, 0, 0
    while True:
        rows = await db.read(TRUST_PAGE, after=after, limit=page_size)
        if not rows:
            break
        pages += 1
        scanned += len(rows)
        fresh = _trust_rows(rows, policy, now)
        moved = [f for f, r in zip(fresh, rows, strict=True)
                 if r["trust"] is None or abs(f["trust"] - r["trust"]) > 1e-6]
        if moved:
            await db.write(SET_TRUST, rows=moved)
            changed += len(moved)
        after = rows[-1]["id"]
    if changed:
        await db.write(BUMP_ALL)
    return Recomputed(scanned, changed, pages)
