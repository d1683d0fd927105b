"""Audit events of tenant and key changes (admin API and key CLI): published on the `audit` topic, with
the actor (an admin key, or the CLI's operating-system user), the action, the subject and what changed,
never a secret."""

from __future__ import annotations

import hashlib
from typing import Any

from moe_core.contracts import AuditEvent, deadline_in
from moe_core.runtime.publish_once import publish_alone, reachable

__all__ = ["change_event", "publish_alone", "reachable"]
AUDIT_DEADLINE_S = 3600.0


def change_event(actor: str, action: str, subject: str, tenant_id: str, details: dict[str, Any]) -> AuditEvent:
    """actor: key:<id> or cli:<user>; action: tenant.created, key.revoked, ...; subject: tenant:<id> or key:<id>.
    The response_id (the record key) is the subject's: one key's or tenant's changes stay in order, in one
    partition and one audit chain."""
    rid = f"admin-{subject}"
    if len(rid) > 128:
        rid = f"admin-{hashlib.sha256(subject.encode()).hexdigest()}"
    return AuditEvent(response_id=rid, tenant_id=tenant_id,
                      deadline_at=deadline_in(AUDIT_DEADLINE_S), actor=actor, action=action, subject=subject,
                      details=details)
