"""Tenants' document sets as catalog entries, read from the signed record: the control plane's
`memory_document_added` and `memory_document_deleted` audit events (POST / DELETE /v1/memory/documents; a document
held for review is stored too, `memory_document_held`, until it is deleted or `memory_document_rejected`) give, per
tenant and document set, the documents it holds now (id, title, digest, chunks, domain) and when it last changed.
A set whose documents were all deleted stays listed with 0 documents (its record remains). Its data class is the
one a `document_set` rule of policy/data-classes.yaml gives, else the tenant's class."""

from __future__ import annotations

import json
from typing import Any

# (index audit_log_audit_actions: the tenants' audit events by action)
DOCUMENT_EVENTS = """
SELECT tenant_id, payload::jsonb ->> 'action' AS action, payload::jsonb ->> 'subject' AS document_id,
       payload::jsonb -> 'details' AS details, coalesce(created_at, broker_ts) AS at
FROM audit_log
WHERE kind = 'record' AND message_type = 'AuditEvent' AND tenant_id = ANY($1::text[])
  AND (payload::jsonb ->> 'action') = ANY($2::text[])
ORDER BY tenant_id, seq
"""
ADDED = ("memory_document_added", "memory_document_held")  # stored (searchable, or held for review)
ACTIONS = [*ADDED, "memory_document_deleted", "memory_document_rejected"]
MAX_TITLES = 20
RETENTION = {"days": None, "rule": "kept until the tenant deletes a document (DELETE /v1/memory/documents/{id}); the "
                                   "audit record of every addition and deletion is kept with the audit log"}


async def document_sets(pool: Any, tenants: list[str]) -> list[dict[str, Any]]:
    """Per tenant and document set: its documents now and its last change, in tenant and set order."""
    if not tenants:
        return []
    sets: dict[tuple[str, str], dict[str, Any]] = {}
    for row in await pool.fetch(DOCUMENT_EVENTS, tenants, ACTIONS):
        details = json.loads(row["details"]) if row["details"] else {}
        name = str(details.get("document_set") or "default")
        found = sets.setdefault((row["tenant_id"], name), {"tenant": row["tenant_id"], "document_set": name,
                                                           "documents": {}, "changed_at": None})
        found["changed_at"] = row["at"].isoformat()
        if row["action"] in ADDED:
            found["documents"][row["document_id"]] = {"id": row["document_id"], **{
                k: details.get(k) for k in ("title", "source", "domain", "chunks", "sha256")}}
        else:
            found["documents"].pop(row["document_id"], None)
    return [sets[k] for k in sorted(sets)]


def entry(found: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The catalog entry of one document set (`dataset:<chroma namespace>:memory/<tenant>/<set>`)."""
    docs = list(found["documents"].values())
    tenant, name = found["tenant"], found["document_set"]
    titles = [str(d.get("title") or d["id"]) for d in docs][:MAX_TITLES]
    described = f"tenant {tenant}'s document set {name}: {len(docs)} documents"
    return {"id": f"dataset:{namespace}:memory/{tenant}/{name}", "kind": "document_set", "namespace": namespace,
            "name": f"memory/{tenant}/{name}", "owners": ["control-plane"],
            "description": described + (f" ({'; '.join(titles)})" if titles else ""),
            "facets": {"tenant": tenant, "document_set": name, "documents": len(docs),
                       "chunks": sum(int(d.get("chunks") or 0) for d in docs),
                       "domains": sorted({str(d["domain"]) for d in docs if d.get("domain")}),
                       "items": docs[:200], "changed_at": found["changed_at"], "retention": RETENTION,
                       "read_by": ["graph-rag"], "api": "/v1/memory/documents"}}
