"""The control plane's policy gate: asks Open Policy Agent for a write decision (moe_core.policy), records
every decision as an audit record (the policy's version, the input and the result), and turns a refusal into
the API's error. OPA unavailable: 503 policy_unavailable (fail closed)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from moe_core.access.keystore import ApiKey
from moe_core.knowledge.graph.audit import audit_event
from moe_core.policy import Decision, PolicyClient, PolicyUnavailable
from moe_core.policy.domains import Keywords
from moe_core.runtime.bus import Bus
from moe_core.runtime.observability.metrics import POLICY_DECISIONS
from moe_core.runtime.openai_error import OpenAIError

log = logging.getLogger(__name__)
TYPES = {400: "invalid_request_error", 404: "invalid_request_error", 413: "invalid_request_error"}


def words(keywords: Keywords | str) -> Keywords:
    """The loaded domain word list (moe_core.policy.domains), or a 503 naming why it could not be loaded."""
    if isinstance(keywords, str):
        raise OpenAIError(503, keywords, "server_error", code="policy_unavailable")
    return keywords


def principal(key: ApiKey) -> dict[str, Any]:
    """Who acts: the principal behind the key (moe_core.access.principals; a key with none recorded: its own
    service account), so one principal's keys are one actor to every policy."""
    return {"id": key.principal, "kind": key.principal_kind, "key_id": key.id, "role": key.role,
            "tenants": list(key.tenant_ids)}


class PolicyGate:
    def __init__(self, client: PolicyClient, bus: Bus) -> None:
        self.client = client
        self.bus = bus
        self.version: str | None = None  # the policy version of this process's last decision

    async def decide(self, key: ApiKey, path: str, action: str, tenant: str, resource: dict[str, Any],
                     subject: str) -> Decision:
        """The decision (audited); a refusal raises the policy's error, no decision a 503."""
        decision = await self.ask(key, path, action, tenant, resource, subject)
        if not decision.allowed:
            first: dict[str, Any] = decision.denials[0] if decision.denials else {
                "code": "policy_denied", "status": 403, "reason": "the policy does not allow this"}
            status = int(first.get("status", 403))
            raise OpenAIError(status, str(first.get("reason")), TYPES.get(status, "permission_error"),
                              code=str(first.get("code")))
        return decision

    async def ask(self, key: ApiKey, path: str, action: str, tenant: str, resource: dict[str, Any],
                  subject: str) -> Decision:
        """The decision, audited, without raising on a refusal (the caller decides what a refusal means)."""
        input_ = {"action": action, "principal": principal(key), "tenant": tenant, "resource": resource}
        try:
            decision = await self.client.decide(path, input_)
        except PolicyUnavailable as exc:
            POLICY_DECISIONS.labels(action, "unavailable").inc()
            log.error("policy decision %s refused (fail closed): %s", action, exc)
            raise OpenAIError(503, f"the policy engine is unavailable, so nothing is written: {exc}", "server_error",
                              code="policy_unavailable") from None
        outcome = "allowed" if decision.allowed else "denied"
        POLICY_DECISIONS.labels(action, outcome).inc()
        await self._changed_policy(decision.version.digest, decision.version.modules)
        await self.record(key, action, subject, tenant, outcome, decision.summary())
        return decision

    async def _changed_policy(self, digest: str, modules: tuple[str, ...]) -> None:
        """The policies in force changed since this process's last decision (an edit of policy/opa, OPA reloading
        it): a record of its own before the first decision under them, so the change is on the record beside the
        decisions it changed (whoever edited the file is not known here: see the deployment's file history)."""
        if self.version == digest:
            return
        previous, self.version = self.version, digest
        if previous is None:
            return  # this process's first decision: nothing to compare with
        event = audit_event(None, actor=f"service:{self.bus.settings.service_name}", action="policy.version_changed",
                            subject=f"policy:{digest}", response_id=f"policy-version-{digest.removeprefix('sha256:')}",
                            tenant="system", reason="the policies in force changed",
                            details={"from": previous, "to": digest, "modules": list(modules)})
        try:
            await self.bus.publish(event, self.bus.topics.audit)
        except Exception:  # the decision stands; a lost record is logged loudly (as every audit publisher)
            log.exception("audit record of the policy change %s -> %s not published", previous, digest)

    async def record(self, key: ApiKey, action: str, subject: str, tenant: str, outcome: str,
                     details: dict[str, Any]) -> None:
        """One audit record of a decision (or a cross-tenant read), keyed by a record id of its own."""
        event = audit_event(None, actor=principal(key)["id"], action="policy_decision", subject=subject,
                            response_id=f"policy-{uuid.uuid4().hex}", tenant=tenant or "system",
                            reason=f"{action}: {outcome}", details={"decision": action, "outcome": outcome,
                                                                     **details})
        try:
            await self.bus.publish(event, self.bus.topics.audit)
        except Exception:  # the decision stands; a lost record is logged loudly (as every audit publisher)
            log.exception("audit record of policy decision %s on %s not published", action, subject)
