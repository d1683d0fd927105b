"""Audit events of the tenant-document API: every addition and deletion, with the document's hash."""

from __future__ import annotations

import logging
from typing import Any

from moe_core.bus import Bus
from moe_core.graph.audit import audit_event

log = logging.getLogger(__name__)
DETAILS = ("title", "source", "domain", "document_set", "chunks", "sha256")


async def publish(bus: Bus, action: str, tenant: str, actor: str, doc: dict[str, Any]) -> None:
    event = audit_event(None, actor=actor, action=action, subject=doc["id"], tenant=tenant, response_id=doc["id"],
                        reason=action, details={k: doc.get(k) for k in DETAILS})
    try:
        await bus.publish(event, bus.topics.audit)
    except Exception:  # the change is made; a lost audit event is logged loudly
        log.exception("could not publish the audit event %s for %s", action, doc["id"])
