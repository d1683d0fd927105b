"""Learned triples and the write policy, shared by every machine writer of the knowledge graph (graph-ingest: a
triple learned from an answer; gap-healer: a term's classification). Before a triple is written, the domains it
touches are resolved by the server (moe_core.policy.domains: its relation type, the graph's domain of its
entities, the words of their names; never a model's labels), joined with the domains of what it was learned from
(`document`: the protected domains the control plane's memory-ingest decision found in the text,
IngestEvent.review_domains; for a gap, the question's words), and Open Policy Agent decides
(policy/opa/memory.rego, action graph.learned_triple). A triple the policy holds (a protected domain) or refuses
goes to the quarantine for review; every decision is a `policy_decision` audit record with the policy's version.

OPA unreachable, or the domain word list unreadable: PolicyDown, a transient failure, so the message is
redelivered with backoff and, after MOE_RETRY_MAX_ATTEMPTS, dead-lettered with this reason; never written
unchecked."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from moe_core.contracts import AuditEvent, Envelope
from moe_core.knowledge.graph import GraphDB, Triple
from moe_core.knowledge.graph.audit import audit_event
from moe_core.policy.domains import Keywords, KeywordsError, load_keywords, resolve_triple, resolve_triples
from moe_core.policy.opa import Decision, PolicyClient, PolicyUnavailable
from moe_core.policy.settings import PolicyEngineSettings
from moe_core.runtime.observability.metrics import POLICY_DECISIONS

log = logging.getLogger(__name__)

RULE = "moe/memory/decision"
BATCH_RULE = "moe/memory/batch"  # RULE for many inputs in one request
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

    @property
    def outcome(self) -> str:
        """allowed, held (a protected domain) or denied (refused)."""
        if not self.decision.allowed:
            return "denied"
        return "held" if self.held else "allowed"

    def reason(self) -> str:
        if not self.decision.allowed:
            first = self.decision.denials[0] if self.decision.denials else {}
            return f"the policy refuses it: {first.get('reason', 'not allowed')}"
        protected = self.decision.result.get("protected_domains") or []
        return f"protected domain {', '.join(protected)}: waits for review (policy {self.decision.version.digest})"


def learning_keywords(settings: PolicyEngineSettings) -> Keywords | str:
    """The words that resolve a triple's domains, or why they cannot be read (then nothing is learned: every
    message is redelivered, then dead-lettered with this reason)."""
    try:
        return load_keywords(settings.keywords_path())
    except KeywordsError as exc:
        log.error("learned triples cannot be checked by the policy, nothing is learned: %s", exc)
        return str(exc)


class LearningPolicy:
    def __init__(self, client: PolicyClient, db: GraphDB, keywords: Keywords | str, service: str) -> None:
        self.client = client
        self.db = db
        self.keywords = keywords
        if not isinstance(keywords, str):  # the protected domains travel with each decision (domains.rego)
            client.context["domain_rules"] = keywords.rules()
        self.actor = f"service:{service}"
        self.principal: dict[str, Any] = {"id": self.actor, "key_id": "", "role": "service", "tenants": []}

    @classmethod
    def from_settings(cls, settings: PolicyEngineSettings, db: GraphDB, service: str) -> LearningPolicy:
        return cls(PolicyClient.from_settings(settings), db, learning_keywords(settings), service)

    async def close(self) -> None:
        await self.client.close()

    def words(self) -> Keywords:
        """The domain word list (raises PolicyDown when it is unreadable)."""
        if isinstance(self.keywords, str):
            raise PolicyDown(self.keywords)
        return self.keywords

    async def resolve(self, tenant: str, triple: Triple) -> list[str]:
        """The domains the server resolves for `triple` (raises PolicyDown when the word list is unreadable)."""
        return await resolve_triple(self.db, tenant, triple, self.words())

    async def resolve_many(self, tenant: str, triples: list[Triple]) -> list[list[str]]:
        """resolve() for each of `triples`, in one query."""
        return await resolve_triples(self.db, tenant, triples, self.words())

    async def decide(self, tenant: str, triple: Triple, found: list[str], document: Iterable[str] = ()) -> Verdict:
        """OPA's decision on writing `triple` into `tenant`, whose own domains are `found` and the domains of
        what it was learned from `document` (raises PolicyDown when there is none)."""
        [verdict] = await self.decide_many(tenant, [(triple, found)], document, one=True)
        return verdict

    async def decide_many(self, tenant: str, items: list[tuple[Triple, list[str]]], document: Iterable[str] = (),
                          one: bool = False) -> list[Verdict]:
        """decide() for each (triple, its domains) of `items`, in one request to OPA (moe.memory.batch); `one`:
        a single item asked as decide() asks it."""
        learned_from = sorted(set(document))
        inputs: list[dict[str, Any]] = [
            {"action": ACTION, "principal": self.principal, "tenant": tenant,
             "resource": {"domains": sorted(set(found) | set(learned_from)), "triple_domains": found,
                          "document_domains": learned_from, "triple": triple.title()}}
            for triple, found in items]
        try:
            if one:
                decisions = [await self.client.decide(RULE, inputs[0])]
            else:
                decisions = await self.client.decide_many(RULE, BATCH_RULE, inputs)
        except PolicyUnavailable as exc:
            POLICY_DECISIONS.labels(ACTION, "unavailable").inc()
            raise PolicyDown(f"the policy engine could not decide, nothing written: {exc}") from exc
        return [Verdict(d, i["resource"]["domains"]) for d, i in zip(decisions, inputs, strict=True)]

    def record(self, cause: Envelope, triple: Triple, verdict: Verdict) -> AuditEvent:
        """The decision's audit record (deterministic per message and triple: a redelivery's copy is dropped)."""
        POLICY_DECISIONS.labels(ACTION, verdict.outcome).inc()
        return audit_event(cause, actor=self.actor, action="policy_decision", subject=triple.title(),
                           reason=f"{ACTION}: {verdict.outcome}",
                           details={"decision": ACTION, "outcome": verdict.outcome, **verdict.decision.summary()})
