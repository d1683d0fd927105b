"""Audit events for decisions that change (or refuse to change) stored knowledge."""

from __future__ import annotations

import hashlib
from typing import Any

from moe_core.contracts import AuditEvent, Envelope
from moe_core.contracts.envelope import deadline_in

AUDIT_DEADLINE_S = 3600.0


def audit_event(cause: Envelope | None, *, actor: str, action: str, subject: str, reason: str = "",
                details: dict[str, Any] | None = None, tenant: str | None = None,
                response_id: str | None = None) -> AuditEvent:
    """An AuditEvent following `cause` (same response_id, tenant, trace), or a standalone one.
    details.event_id is deterministic, so a consumer can drop the copies at-least-once delivery makes."""
    fields: dict[str, Any] = cause.child_fields() if cause is not None else {
        "response_id": response_id or "audit", "deadline_at": deadline_in(AUDIT_DEADLINE_S),
        "tenant_id": tenant or "system"}
    if tenant is not None:
        fields["tenant_id"] = tenant
    event_id = hashlib.sha256("\x1f".join([fields["response_id"], actor, action, subject]).encode()).hexdigest()[:24]
    return AuditEvent(**fields, actor=actor, action=action, subject=subject, reason=reason[:2000],
                      details={"event_id": event_id, **(details or {})})
