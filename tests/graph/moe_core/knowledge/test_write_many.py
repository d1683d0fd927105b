"""GraphStore.write_many_in (graph-ingest: an answer's triples in one statement) leaves the graph write_in leaves
when it writes the same triples one after the other, on the real Neo4j: a name resolves to the tenant's entity, to
an alias of one, or to the shared ontology's; a new name becomes one entity however often the answer names it; a
relation two names of one entity give is asserted once with the higher confidence; a relation an earlier answer
wrote is counted once more. Only the tenant's GraphVersion moves once, not once per relation."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from moe_core.knowledge.graph import GraphDB, GraphStore, Provenance, Triple
from moe_core.knowledge.graph.alias_nodes import SYNC_ALIASES
from moe_core.knowledge.graph.measure import MAX_STEPS, Counted, tenant_size
from moe_core.knowledge.graph.names import normalize
from moe_core.knowledge.graph.vocab import SHARED_TENANT
from tests.graph.helpers import purge

pytestmark = pytest.mark.infra

ENTITIES = """
MATCH (e:Entity {tenant: $tenant})
RETURN e.key AS key, e.name AS name, e.type AS type, e.domain AS domain, e.source AS source, e.aliases AS aliases
ORDER BY key
"""
RELATIONS = """
MATCH (a:Entity)-[r:REL {tenant: $tenant}]->(b:Entity)
RETURN a.key AS subject, a.tenant = $tenant AS own_subject, r.type AS type, b.key AS object,
       b.tenant = $tenant AS own_object, r.version AS version, r.assertions AS assertions, r.confidence AS confidence,
       r.trust AS trust, r.source AS source, r.domain AS domain, r.asserted_by AS asserted_by,
       r.response_id AS response_id, r.verified AS verified, r.flagged AS flagged, r.expert AS expert
ORDER BY subject, type, object
"""
# with its alias nodes, as every writer of aliases (moe_core.knowledge.graph.alias_nodes)
ALIAS = ("MATCH (e:Entity {tenant: $tenant, key: $key}) SET e.aliases = [$alias], e.alias_keys = [$alias_key] WITH e"
         + SYNC_ALIASES)
VERSION = "OPTIONAL MATCH (v:GraphVersion {tenant: $tenant}) RETURN coalesce(v.n, 0) AS n"
VERSIONS = "OPTIONAL MATCH (v:GraphVersion {tenant: $tenant}) RETURN [v.n, v.lex, v.epoch] AS version"


@pytest.fixture
async def tenants(graph_db: GraphDB) -> AsyncIterator[tuple[str, str]]:
    pair = (f"gt-{uuid.uuid4().hex[:10]}", f"gt-{uuid.uuid4().hex[:10]}")
    yield pair
    for name in pair:
        await purge(graph_db, name)


async def _prepare(store: GraphStore, tenant: str, m: str) -> None:
    """What an earlier answer left: an entity with an alias, and a relation the answer asserts again."""
    earlier = Provenance(tenant=tenant, source="extracted", domain="medical", origin="earlier", expert="e1")
    await store.write_triple(Triple(subject=f"Quux {m}", relation="TREATS", object="Headache", confidence=0.4),
                             earlier)
    await store.db.write(ALIAS, tenant=tenant, key=normalize(f"Quux {m}"), alias=f"Qx {m}",
                         alias_key=normalize(f"Qx {m}"))


def _triples(m: str) -> list[Triple]:
    return [Triple(subject=f"Zorblaxin {m}", relation="TREATS", object="Headache", confidence=0.8),  # shared object
            Triple(subject=f"Zorblaxin {m}", relation="CAUSES", object=f"Nausea {m}", confidence=0.6),
            Triple(subject=f"Qx {m}", relation="PART_OF", object=f"Zorblaxin {m}", confidence=0.5),  # by its alias
            Triple(subject=f"quux  {m}", relation="PART_OF", object=f"zorblaxin {m}", confidence=0.9),  # same relation
            Triple(subject=f"Quux {m}", relation="TREATS", object="headache", confidence=0.7)]  # asserted before


async def _graph(db: GraphDB, tenant: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return await db.read(ENTITIES, tenant=tenant), await db.read(RELATIONS, tenant=tenant)


async def test_an_answers_triples_written_together_leave_the_graph_one_at_a_time_leaves(
        graph_db: GraphDB, tenants: tuple[str, str]) -> None:
    store, m = GraphStore(graph_db), uuid.uuid4().hex[:8]
    alone, together = tenants
    for tenant in tenants:
        await _prepare(store, tenant, m)
    triples = _triples(m)
    def prov(tenant: str) -> Provenance:
        return Provenance(tenant=tenant, source="extracted", domain="medical", origin=f"answer-{m}", expert="e2",
                          model="m2")

    one_by_one = [await store.write_triple(t, prov(alone)) for t in triples]
    before = (await graph_db.read(VERSION, tenant=together))[0]["n"]
    batched, counted = await graph_db.transaction(
        lambda tx: store.write_many_counted_in(tx, triples, prov(together)))

    assert await _graph(graph_db, together) == await _graph(graph_db, alone)
    entities, rels = await _graph(graph_db, together)
    assert [e["name"] for e in entities] == [f"Nausea {m}", f"Quux {m}", f"Zorblaxin {m}"]  # one each, first name
    assert len(rels) == 4 and len({w.id for w in batched}) == 4
    part_of = next(r for r in rels if r["type"] == "PART_OF")
    assert (part_of["confidence"], part_of["version"]) == (0.9, 1)  # two names of Quux: one relation, one count
    treats = next(r for r in rels if r["subject"] == normalize(f"Quux {m}") and r["type"] == "TREATS")
    assert (treats["version"], treats["asserted_by"]) == (2, ["earlier", f"answer-{m}"])
    # each triple's written relation, in order, with its trust once the answer is written (one at a time, the
    # first of two writes of one relation returned the trust before the second)
    final = {w.id: w.trust for w in one_by_one}
    assert [w.trust for w in batched] == [final[w.id] for w in one_by_one]
    assert len({w.id for w in batched[2:4]}) == 1 and batched[4].id != batched[0].id
    assert (await graph_db.read(VERSION, tenant=together))[0]["n"] == before + 1
    # the tenant's size after the write, counted by the graph in the statement that wrote, at the version it left
    assert counted is not None and counted.counts == await tenant_size(graph_db, together) == {"entities": 3,
                                                                                               "relations": 4}
    assert counted.version == list((await graph_db.read(VERSIONS, tenant=together))[0]["version"])
    again = await graph_db.transaction(lambda tx: store.write_many_in(tx, triples, prov(together)))
    assert [w.id for w in again] == [w.id for w in batched] and all(w.repeated for w in again)
    assert await _graph(graph_db, together) == await _graph(graph_db, alone)  # a redelivery changes nothing


async def test_names_resolved_by_the_caller_are_used_and_a_vanished_entity_is_resolved_again(
        graph_db: GraphDB, tenants: tuple[str, str]) -> None:
    """write_many_in with `known` (graph-ingest: the names its checks resolved) writes between those entities, not
    resolving them again; an entity of `known` deleted meanwhile is resolved in the transaction after all."""
    store, m = GraphStore(graph_db), uuid.uuid4().hex[:8]
    alone, together = tenants
    triples = [Triple(subject=f"Quibble {m}", relation="PART_OF", object="Headache", confidence=0.8)]
    prov = Provenance(tenant=together, source="extracted", origin=f"answer-{m}", learned_from=f"answer:{m}")
    headache = (await graph_db.read("MATCH (e:Entity {key: 'headache', tenant: $shared}) RETURN e.uid AS uid",
                                    shared=SHARED_TENANT))[0]
    [w] = await graph_db.transaction(lambda tx: store.write_many_in(tx, triples, prov, {"headache": headache["uid"]}))
    assert w.object_uid == headache["uid"] and w.created
    gone = {"headache": "no-such-entity", normalize(f"Quibble {m}"): "no-such-entity-either"}
    [again] = await graph_db.transaction(lambda tx: store.write_many_in(tx, triples, prov, gone))
    assert (again.id, again.subject_uid, again.object_uid) == (w.id, w.subject_uid, w.object_uid)
    rows = await graph_db.read(RELATIONS, tenant=together)
    assert [(r["version"], r["asserted_by"]) for r in rows] == [(1, [f"answer-{m}"])]  # counted once per origin
    learned = await graph_db.read("MATCH ()-[r:REL {id: $id}]->() RETURN r.learned_from AS f", id=w.id)
    assert learned == [{"f": [f"answer:{m}"]}]
    assert await graph_db.read(ENTITIES, tenant=alone) == []  # the other tenant untouched


async def test_the_size_after_is_carried_from_the_callers_count_only_while_no_other_writer_moved_the_version(
        graph_db: GraphDB, tenants: tuple[str, str]) -> None:
    """write_many_counted_in with `since` (graph-ingest: the "before" of its plan's read): the size after is that count
    plus what the statement made, not counted again, while the version shows the statement alone moved it since; once
    another writer moved it, or after MAX_STEPS carried writes, the graph counts the tenant again. Either way the
    figure is the graph's own count."""
    store, m, tenant = GraphStore(graph_db), uuid.uuid4().hex[:8], tenants[0]
    await _prepare(store, tenant, m)

    def prov(i: int) -> Provenance:
        return Provenance(tenant=tenant, source="extracted", origin=f"answer-{m}-{i}")

    async def write(i: int, since: Counted | None, triples: list[Triple]) -> Counted:
        _, counted = await graph_db.transaction(
            lambda tx: store.write_many_counted_in(tx, triples, prov(i), count=True, since=since))
        assert counted is not None and counted.counts == await tenant_size(graph_db, tenant)
        assert counted.version == list((await graph_db.read(VERSIONS, tenant=tenant))[0]["version"])
        return counted

    first = await write(0, None, _triples(m))
    assert first.steps == 0  # no count to carry: counted
    # new entities, a new relation, and one asserted before (no entity made): carried
    carried = await write(1, first, [Triple(subject=f"Fnord {m}", relation="CAUSES", object="Headache", confidence=0.5),
                                     Triple(subject=f"Quux {m}", relation="TREATS", object="Headache", confidence=0.5)])
    assert carried.steps == 1
    assert carried.counts == {"entities": first.counts["entities"] + 1, "relations": first.counts["relations"] + 1}
    # another writer in between (one at a time: its own transaction moves the version): counted again
    await store.write_triple(Triple(subject=f"Blorp {m}", relation="PART_OF", object=f"Fnord {m}", confidence=0.5),
                             prov(2))
    assert (await write(3, carried, [Triple(subject=f"Glim {m}", relation="CAUSES", object=f"Fnord {m}",
                                            confidence=0.5)])).steps == 0
    # a count carried MAX_STEPS times is counted again
    latest = await write(4, None, [])
    worn = Counted(latest.version, latest.counts, MAX_STEPS)
    assert (await write(5, worn, [Triple(subject=f"Zot {m}", relation="CAUSES", object="Headache",
                                         confidence=0.5)])).steps == 0
