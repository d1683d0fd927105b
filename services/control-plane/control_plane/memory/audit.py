"""Audit events of the tenant-document API: every addition and deletion, with the document's hash, and every step of
a held document's review (held at upload, each approval, its release into search, a rejection, a refusal)."""

from __future__ import annotations

import logging
from typing import Any

from moe_core.knowledge.graph.audit import audit_event
from moe_core.runtime.bus import Bus

log = logging.getLogger(__name__)
DETAILS = ("title", "source", "domain", "document_set", "chunks", "sha256")
REVIEW_DETAILS = ("status", "uploaded_by", "review_domains", "approvals_required")


async def publish(bus: Bus, action: str, tenant: str, actor: str, doc: dict[str, Any],
                  extra: dict[str, Any] | None = None, reason: str = "") -> None:
    details = {k: doc.get(k) for k in DETAILS}
    if doc.get("approvals_required"):  # a document that needs (or needed) review: where it stands
        details |= {k: doc.get(k) for k in REVIEW_DETAILS} | {"approvals": len(doc.get("approvals") or [])}
    event = audit_event(None, actor=actor, action=action, subject=doc["id"], tenant=tenant, response_id=doc["id"],
                        reason=reason or action, details=details | (extra or {}))
    try:
        await bus.publish(event, bus.topics.audit)
    except Exception:  # the change is made; a lost audit event is logged loudly
        log.exception("could not publish the audit event %s for %s", action, doc["id"])
