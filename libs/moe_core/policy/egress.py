"""Egress decisions: whether a request of a data class may reach an inference server and model (or web research),
asked of Open Policy Agent (policy/opa/egress.rego) and cached per policy version, so a request costs dict look-ups
and no OPA round trip (the version is read again at most every `check_s` seconds; a new version empties the cache).
Each request's decisions become one egress record in the signed audit log (`egress_record`)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from moe_core.contracts import AuditEvent, Envelope
from moe_core.knowledge.graph.audit import audit_event
from moe_core.policy.opa import PolicyClient, PolicyVersion

PATH = "moe/egress/decision"
RESEARCH = "research"  # Envelope.egress's entry for web research


@dataclass(frozen=True)
class Target:
    """Somewhere a request could go: a role's model on a server, or web research (kind research, no server)."""

    role: str  # planner, judge, expert:<category>, critic, research, ...
    kind: str  # model | research
    server: str = ""
    model: str = ""
    region: str = ""
    sovereignty: str = ""

    @property
    def egress(self) -> str:
        return RESEARCH if self.kind == RESEARCH else f"{self.server}/{self.model}"


@dataclass(frozen=True)
class EgressDecision:
    target: Target
    allowed: bool
    rule: str
    reason: str  # the policy's, for a refusal ("" when allowed)

    def record(self) -> dict[str, Any]:
        return {**asdict(self.target), "outcome": "allow" if self.allowed else "deny", "rule": self.rule,
                **({"reason": self.reason} if self.reason else {})}


class EgressPolicy:
    def __init__(self, client: PolicyClient, check_s: float = 5.0) -> None:
        self.client = client
        self.check_s = check_s
        self.version: PolicyVersion | None = None
        self._checked_at = float("-inf")
        self._cache: dict[tuple[str, ...], tuple[bool, str, str]] = {}
        self.asked = 0  # decisions asked of OPA (cache misses), for tests and metrics

    async def _current(self) -> PolicyVersion:
        now = time.monotonic()
        if self.version is None or now - self._checked_at >= self.check_s:
            version = await self.client.version()
            self._checked_at = now
            if version != self.version:
                self.version, self._cache = version, {}
        assert self.version is not None
        return self.version

    async def decide(self, data_class: str, targets: list[Target]) -> tuple[PolicyVersion, list[EgressDecision]]:
        """Each target's decision for `data_class` (PolicyUnavailable when OPA cannot be asked: fail closed)."""
        version = await self._current()
        out = []
        for target in targets:
            key = (data_class, target.kind, target.server, target.model, target.region, target.sovereignty)
            if key not in self._cache:
                self._cache[key] = await self._ask(data_class, target)
            allowed, rule, reason = self._cache[key]
            out.append(EgressDecision(target, allowed, rule, reason))
        return self.version or version, out

    async def _ask(self, data_class: str, target: Target) -> tuple[bool, str, str]:
        self.asked += 1
        decision = await self.client.decide(PATH, {
            "class": data_class, "kind": target.kind, "model": target.model,
            "server": {"name": target.server, "region": target.region, "sovereignty": target.sovereignty}})
        if decision.version != self.version:  # reloaded under us: what follows is cached under the new version
            self.version, self._cache = decision.version, {}
        reason = str(decision.denials[0].get("reason", "")) if decision.denials else ""
        return decision.allowed, str(decision.result.get("rule", "")), reason


def egress_record(cause: Envelope, data_class: str, because: dict[str, str], version: PolicyVersion,
                  decisions: list[EgressDecision], refused: str | None) -> AuditEvent:
    """The request's egress record: its class (and where it came from), each decision (server, model, region,
    sovereignty, allow or deny, the rule that matched) and the policy version; `refused` names why it was refused
    (a required role with no permitted server), None when it was sent on."""
    return audit_event(cause, actor="service:planner", action="egress.refused" if refused else "egress.decided",
                       subject=f"data_class:{data_class}", reason=refused or "sent only where its class may go",
                       details={"data_class": data_class, "class_from": because, "policy": PATH,
                                "policy_version": version.digest, "outcome": "deny" if refused else "allow",
                                "decisions": [d.record() for d in decisions]})
