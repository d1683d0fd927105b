"""graph-ingest decides an answer's triples together (graph_ingest.batch: one query for the names, one for the
conflicts, one for the reach, one request to OPA) and each gets the outcome it gets when the triples are checked
and written one after the other, on the real Neo4j and OPA: a triple's reach counts what the triples before it
write (not what a triple held for its reach would have written), a name resolves to the entity an earlier triple
creates, a contradiction of curated knowledge is refused, a protected domain is held."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from graph_ingest import batch, core
from moe_core.knowledge.graph import GraphDB, GraphStore, Provenance, Triple
from moe_core.knowledge.graph.measure import Sizes
from moe_core.knowledge.graph.quarantine import blast_radius_exceeded
from moe_core.policy.domains import load_keywords
from moe_core.policy.learned import LearningPolicy
from moe_core.policy.opa import PolicyClient

pytestmark = pytest.mark.infra

THRESHOLD = 4
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
async def learning(infra: dict[str, str], graph_db: GraphDB) -> AsyncIterator[LearningPolicy]:
    policy = LearningPolicy(PolicyClient(infra["opa"]), graph_db, load_keywords(ROOT / "policy/domain-keywords.yaml"),
                            "graph-ingest")
    yield policy
    await policy.close()


async def _one_at_a_time(store: GraphStore, learning: LearningPolicy, prov: Provenance, triples: list[Triple],
                         domains: list[list[str]]) -> list[tuple[str, int, list[str]]]:
    """What graph-ingest did before batching: each triple checked, decided and written before the next."""
    out = []
    for triple, found in zip(triples, domains, strict=True):
        conflicts = await store.conflicts(prov.tenant, triple)
        ids = sorted(c["id"] for c in conflicts)
        if core.conflict_decision(conflicts) == "reject":
            out.append(("reject", 0, ids))
            continue
        reach = await store.reach(prov.tenant, triple)
        if blast_radius_exceeded(reach, THRESHOLD):
            out.append(("blast", reach, ids))
            continue
        verdict = await learning.decide(prov.tenant, triple, found)
        if not verdict.held:
            await store.write_triple(triple, prov)
        out.append(("held" if verdict.held else "write", reach, ids))
    return out


async def test_an_answers_triples_decided_together_get_what_they_get_one_at_a_time(
        graph_db: GraphDB, tenant: str, learning: LearningPolicy) -> None:
    m, store = uuid.uuid4().hex[:8], GraphStore(graph_db)
    prov = Provenance(tenant=tenant, source="extracted", domain="technical", origin=f"r-{m}")
    for i in range(5):  # a hub: Hub reaches five entities
        await store.write_triple(Triple(subject=f"Hub {m}", relation="PART_OF", object=f"Leaf {m} {i}"), prov)
    curated = Provenance(tenant=tenant, source="ontology", domain="medical", origin=f"seed-{m}")
    await store.write_triple(Triple(subject=f"Xylo {m}", relation="TREATS", object=f"Yarrow {m}"), curated)

    def t(s: str, r: str, o: str) -> Triple:
        return Triple(subject=f"{s} {m}", relation=r, object=f"{o} {m}", confidence=0.9)

    triples = [t("Alpha", "PART_OF", "Beta"),  # new entities: reach 0
               t("Beta", "PART_OF", "Gamma"),  # Beta created by the first: reaches Alpha
               t("Gamma", "PART_OF", "Hub"),  # reaches the hub's leaves, Beta and Alpha: held for its reach
               t("Alpha", "PART_OF", "Delta"),  # reaches Beta and Gamma, not the hub (the third was not written)
               t("Delta", "PART_OF", "Epsilon"),  # a protected domain: held by the policy
               t("Epsilon", "PART_OF", "Zeta"),  # Epsilon was not created (held): reach 0
               t("Xylo", "CAUSES", "Yarrow")]  # contradicts curated knowledge: refused
    domains = [[], [], [], [], ["medical"], [], []]
    planned = await batch.plan(graph_db, learning, tenant, THRESHOLD, triples, domains, [], Sizes())
    assert planned.outcomes is not None
    assert planned.before == {"entities": 8, "relations": 6}  # counted in the read that resolved the names
    together = [(o.action, 0 if o.action == "reject" else o.reach, sorted(c["id"] for c in o.conflicts))
                for o in planned.outcomes]
    alone = await _one_at_a_time(store, learning, prov, triples, domains)
    assert together == alone
    assert [a for a, _, _ in alone] == ["write", "write", "blast", "write", "held", "write", "reject"]
    assert [r for _, r, _ in alone][:6] == [0, 1, 7, 2, 2, 0]


async def test_an_answer_whose_triples_contradict_each_other_is_decided_one_at_a_time(
        graph_db: GraphDB, tenant: str, learning: LearningPolicy) -> None:
    m = uuid.uuid4().hex[:8]
    triples = [Triple(subject=f"Quux {m}", relation="TREATS", object=f"Zorp {m}"),
               Triple(subject=f"Quux {m}", relation="CAUSES", object=f"Zorp {m}")]
    assert (await batch.plan(graph_db, learning, tenant, THRESHOLD, triples, [[], []], [], Sizes())).outcomes is None
