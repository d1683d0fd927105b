"""Audit events of tenant and key changes (admin API and key CLI): published on the `audit` topic, with
the actor (an admin key, or the CLI's operating-system user), the action, the subject and what changed,
never a secret."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

from moe_core.bus import Bus
from moe_core.contracts import AuditEvent, deadline_in
from moe_core.settings import FleetSettings

log = logging.getLogger(__name__)
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


async def publish_alone(settings: FleetSettings, event: AuditEvent, timeout_s: float = 10.0) -> bool:
    """Publish one event from a process without a running broker (the CLI); False if Kafka is unreachable."""
    bus = Bus(settings)
    try:
        await asyncio.wait_for(bus.ensure_topics(), timeout_s)  # as every service does at start
        await asyncio.wait_for(bus.broker.start(), timeout_s)
        await asyncio.wait_for(bus.publish(event, bus.topics.audit), timeout_s)
        return True
    except Exception as exc:  # reported to the operator by the caller
        log.warning("audit event %s %s not published: %s", event.action, event.subject, exc)
        return False
    finally:
        await bus.broker.stop()
