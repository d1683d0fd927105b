"""plan_read.PLAN_READ gives in one read what graph-ingest's three checks gave (the names resolved and the tenant
counted, the contradicting relations, reach_of with every triple before a measured one written) and the entities the
write policy resolves the triples' domains by (moe_core.policy.domains.KNOWN_DOMAINS): in step with their
statements (Cypher is not built from text), and the right answers on the real Neo4j for names of the tenant, of an
alias, of the shared ontology and new ones, a contradiction, and the relations the triples before a triple write."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from moe_core.knowledge.graph import GraphDB, GraphStore, Provenance, Triple
from moe_core.knowledge.graph.alias_nodes import SYNC_ALIASES
from moe_core.knowledge.graph.checks import (
    CONFLICTS_MANY,
    REACH_MANY,
    RESOLVE_MANY_COUNTED,
    reach_of,
)
from moe_core.knowledge.graph.measure import Sizes
from moe_core.knowledge.graph.names import normalize
from moe_core.knowledge.graph.plan_read import PLAN_READ, read_plan
from moe_core.policy.domains import KNOWN_DOMAINS, domains_by_key, graph_domains, triple_keys
from tests.graph.helpers import purge


def _flat(cypher: str) -> str:
    return " ".join(cypher.split())


@pytest.mark.unit
def test_it_resolves_counts_finds_conflicts_and_measures_as_the_three_checks_do() -> None:
    resolve = RESOLVE_MANY_COUNTED.strip().splitlines()
    assert resolve[-1] == "RETURN found, version, entities, relations"
    assert _flat("\n".join(resolve[:-1])) in _flat(PLAN_READ)
    conflicts = CONFLICTS_MANY.strip().splitlines()
    assert _flat("\n".join(conflicts[1:3])) in _flat(PLAN_READ)  # its MATCH and WHERE, on the uids of the keys
    reach = REACH_MANY.strip().splitlines()
    assert reach[1] == "CALL (item) {" and reach[-2] == "}"
    assert _flat("\n".join(reach[1:-1])) in _flat(PLAN_READ)  # the reach of an item of uids, as REACH_MANY's
    known = KNOWN_DOMAINS.strip().splitlines()
    assert known[0] == "CALL () {" and known[-2] == "}"
    assert _flat("\n".join(known[1:-2])).replace("$keys", "$domain_keys") in _flat(PLAN_READ)  # the write policy's


ALIAS = ("MATCH (e:Entity {tenant: $tenant, key: $key}) SET e.aliases = [$alias], e.alias_keys = [$alias_key] WITH e"
         + SYNC_ALIASES)


@pytest.fixture
async def tenant(graph_db: GraphDB) -> AsyncIterator[str]:
    name = f"pr-{uuid.uuid4().hex[:10]}"
    yield name
    await purge(graph_db, name)


@pytest.mark.infra
async def test_one_read_answers_what_the_three_checks_answer(graph_db: GraphDB, tenant: str) -> None:
    # the tenant: Quux (alias Qx) TREATS the shared Headache; Quux PART_OF Blorb PART_OF Snorf
    store, m = GraphStore(graph_db), uuid.uuid4().hex[:8]
    prov = Provenance(tenant=tenant, source="extracted", domain="medical", origin="earlier")
    for t in (Triple(subject=f"Quux {m}", relation="TREATS", object="Headache", confidence=0.4),
              Triple(subject=f"Quux {m}", relation="PART_OF", object=f"Blorb {m}", confidence=0.6),
              Triple(subject=f"Blorb {m}", relation="PART_OF", object=f"Snorf {m}", confidence=0.6)):
        await store.write_triple(t, prov)
    await graph_db.write(ALIAS, tenant=tenant, key=normalize(f"Quux {m}"), alias=f"Qx {m}",
                         alias_key=normalize(f"Qx {m}"))
    triples = [Triple(subject=f"Qx {m}", relation="CAUSES", object="headache", confidence=0.8),  # contradicts
               Triple(subject=f"Zorblaxin {m}", relation="PART_OF", object=f"Blorb {m}", confidence=0.8),
               Triple(subject=f"Nausea {m}", relation="PART_OF", object=f"Zorblaxin {m}", confidence=0.8),  # new
               Triple(subject=f"Fresh {m}", relation="PART_OF", object=f"Newer {m}", confidence=0.8)]  # no starts

    keys = triple_keys(triples)
    read = await read_plan(graph_db, tenant, triples, Sizes(), keys)
    resolved = read.resolved
    quux, headache = resolved.uid(f"Qx {m}"), resolved.uid("headache")  # the alias, and the shared entity
    assert quux is not None and headache is not None and resolved.uid(f"Zorblaxin {m}") is None
    assert read.before == {"entities": 3, "relations": 3}
    assert [[c["type"] for c in found] for found in read.conflicts] == [["TREATS"], [], [], []]
    domains = domains_by_key(read.domains, keys)  # Quux through its alias Qx, as the write policy's own read
    assert domains == await graph_domains(graph_db, tenant, keys) and domains[normalize(f"Qx {m}")] == {"medical"}
    items = []
    for j, t in enumerate(triples):  # as graph_ingest.batch measures a triple after the ones before it are written
        created = {normalize(n) for e in triples[:j] for n in (e.subject, e.object)} - set(resolved.uids)
        starts = sorted({u for n in (t.subject, t.object) if (u := resolved.uid(n, created)) is not None})
        edges = [[resolved.written_uid(e.subject), resolved.written_uid(e.object)] for e in triples[:j]]
        items.append((starts, edges))
    reaches = await reach_of(graph_db, tenant, items)
    # Blorb's Quux and Snorf, and Quux's Headache; for Nausea's, through Zorblaxin the answer makes, the same
    assert read.reaches == reaches and reaches[1:] == [3, 3, 0], reaches
