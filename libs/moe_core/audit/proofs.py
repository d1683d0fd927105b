"""The RFC 6962 proofs codex-lineage hands out from the store: an export's tree material (the compact range at its
first checkpoint and the consistency proof from its first checkpoint to its last; moe_audit_verify.witnessed), and
one request's inclusion proofs against the first cosigned checkpoint that covers it (moe_audit_verify.request_proof).
The leaves are read from the tenant's chain (its entries' chain hashes): one read of `size` hashes."""

from __future__ import annotations

from typing import Any

from moe_audit_verify.format import b64
from moe_audit_verify.merkle import CompactRange, consistency_proof, entry_leaf, inclusion_proof


async def leaves(pool: Any, tenant: str, size: int) -> list[bytes]:
    rows = await pool.fetch("SELECT hash FROM audit_log WHERE tenant_id=$1 AND seq <= $2 ORDER BY seq", tenant, size)
    return [entry_leaf(r["hash"]) for r in rows]


async def tree_material(pool: Any, tenant: str, first_size: int, last_size: int) -> dict[str, Any]:
    """tree.json of an export whose checkpoints run from size `first_size` to `last_size`."""
    tree = await leaves(pool, tenant, last_size)
    return {"size": first_size, "compact_range": [b64(h) for h in CompactRange.of(tree[:first_size]).hashes],
            "consistency": {"old": first_size, "new": last_size,
                            "proof": [b64(p) for p in consistency_proof(tree, first_size)]}}


async def request_proof(pool: Any, response_id: str) -> dict[str, Any] | None:
    """One request's entries with their inclusion proofs against the first witnessed checkpoint covering all of
    them (None: no record of it, or no witnessed checkpoint covers it yet)."""
    rows = await pool.fetch("SELECT * FROM audit_log WHERE response_id=$1 ORDER BY seq", response_id)
    if not rows:
        return None
    tenant, last = rows[0]["tenant_id"], max(r["seq"] for r in rows)
    cp = await pool.fetchrow("SELECT * FROM audit_checkpoints WHERE tenant_id=$1 AND size >= $2 AND note IS NOT NULL "
                             "ORDER BY time LIMIT 1", tenant, last)
    if cp is None:
        return None
    tree = await leaves(pool, tenant, cp["size"])
    from moe_core.audit.entries import checkpoint_of_row, checkpoint_record, content_of_row

    return {"format": "moe-audit-proof/1", "tenant_id": tenant, "response_id": response_id,
            "checkpoint": checkpoint_record(checkpoint_of_row(cp)),
            "entries": [{"content": content_of_row(r), "hash": r["hash"], "signature": r["signature"],
                         "inclusion": [b64(p) for p in inclusion_proof(tree, r["seq"] - 1)]}
                        for r in rows if r["tenant_id"] == tenant]}
