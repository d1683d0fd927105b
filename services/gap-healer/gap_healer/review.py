"""A classification goes through the same write policy as a triple graph-ingest learns (moe_core.policy.learned,
policy/opa/memory.rego, action graph.learned_triple): the triple `<term> IS_A <class>`'s domains are resolved by the
server (the class's domain in the graph, the words of both names), joined with the domains of what it was learned
from: the words of the question the gap came from, and the classification's own domain label (a model's label
only adds review, never takes it away). A protected domain (or a refusal) holds it in the quarantine."""

from __future__ import annotations

from gap_healer.core import Classification
from moe_core.contracts import OntologyGap
from moe_core.knowledge.graph import Triple
from moe_core.policy.domains import resolve_text
from moe_core.policy.learned import LearningPolicy, Verdict


def classified_triple(found: Classification) -> Triple:
    return Triple(subject=found.name, relation="IS_A", object=found.parent, confidence=found.confidence)


async def decide(policy: LearningPolicy, gap: OntologyGap, triple: Triple, found: Classification) -> Verdict:
    """OPA's decision on writing the classification (raises PolicyDown when there is none)."""
    domains = await policy.resolve(gap.tenant_id, triple)
    learned_from = {*resolve_text(gap.context, policy.words()), found.domain}
    return await policy.decide(gap.tenant_id, triple, domains, learned_from)
