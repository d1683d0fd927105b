"""Learned triples and the write policy: before a triple is written, the domains it touches are resolved by
the server (moe_core.policy.domains: its relation type, the graph's domain of its entities, the words of their
names; never the answer's labels), joined with the protected domains the control plane's memory-ingest decision
found in the text it came from (IngestEvent.review_domains), and Open Policy Agent decides
(policy/opa/memory.rego, action graph.learned_triple). A triple the policy holds (a protected domain) or refuses
goes to the quarantine for review; every decision is a `policy_decision` audit record with the policy's version.

OPA unreachable, or the domain word list unreadable: PolicyDown, a transient failure, so the answer is
redelivered with backoff and, after MOE_RETRY_MAX_ATTEMPTS, dead-lettered with this reason; never written
unchecked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moe_core.contracts import AuditEvent, IngestEvent
from moe_core.graph import GraphDB, Triple
from moe_core.graph.audit import audit_event
from moe_core.observability.metrics import POLICY_DECISIONS
from moe_core.policy import Decision, PolicyClient, PolicyUnavailable
from moe_core.policy.domains import Keywords, resolve_triple

RULE = "moe/memory/decision"
ACTION = "graph.learned_triple"


class PolicyDown(ConnectionError):
    """No decision could be had: transient for the consumer (redelivered, then dead-lettered with the reason)."""


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    domains: list[str]

    @property
    def held(self) -> bool:
        """The triple waits in the quarantine: refused, or in a protected domain."""
        return not self.decision.allowed or bool(self.decision.result.get("quarantine"))

    def reason(self) -> str:
        if not self.decision.allowed:
            first = self.decision.denials[0] if self.decision.denials else {}
            return f"the policy refuses it: {first.get('reason', 'not allowed')}"
        protected = self.decision.result.get("protected_domains") or []
        return f"protected domain {', '.join(protected)}: waits for review (policy {self.decision.version.digest})"


class LearningPolicy:
    def __init__(self, client: PolicyClient, db: GraphDB, keywords: Keywords | str, service: str) -> None:
        self.client = client
        self.db = db
        self.keywords = keywords
        self.actor = f"service:{service}"
        self.principal: dict[str, Any] = {"id": self.actor, "key_id": "", "role": "service", "tenants": []}

    async def close(self) -> None:
        await self.client.close()

    async def resolve(self, event: IngestEvent, triple: Triple) -> list[str]:
        """The domains the server resolves for `triple` (raises PolicyDown when the word list is unreadable)."""
        if isinstance(self.keywords, str):
            raise PolicyDown(self.keywords)
        return await resolve_triple(self.db, event.tenant_id, triple, self.keywords)

    async def decide(self, event: IngestEvent, triple: Triple, found: list[str]) -> Verdict:
        """OPA's decision on writing `triple` learned from `event`, whose own domains are `found` (raises
        PolicyDown when there is none)."""
        document = sorted(set(event.review_domains))
        resource: dict[str, Any] = {"domains": sorted(set(found) | set(document)), "triple_domains": found,
                                    "document_domains": document, "triple": triple.title()}
        input_ = {"action": ACTION, "principal": self.principal, "tenant": event.tenant_id, "resource": resource}
        try:
            decision = await self.client.decide(RULE, input_)
        except PolicyUnavailable as exc:
            POLICY_DECISIONS.labels(ACTION, "unavailable").inc()
            raise PolicyDown(f"the policy engine could not decide, nothing written: {exc}") from exc
        return Verdict(decision, resource["domains"])

    def record(self, event: IngestEvent, triple: Triple, verdict: Verdict) -> AuditEvent:
        """The decision's audit record (deterministic per answer and triple: a redelivery's copy is dropped)."""
        outcome = "held" if verdict.held and verdict.decision.allowed else (
            "allowed" if verdict.decision.allowed else "denied")
        POLICY_DECISIONS.labels(ACTION, outcome).inc()
        return audit_event(event, actor=self.actor, action="policy_decision", subject=triple.title(),
                           reason=f"{ACTION}: {outcome}",
                           details={"decision": ACTION, "outcome": outcome, **verdict.decision.summary()})
