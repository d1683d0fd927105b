"""A name is found by its alias through the entity's alias nodes (moe_core.knowledge.graph.alias_nodes), on the real
Neo4j: the lookups' db hits do not grow with the entities a tenant sees (before, each filtered every visible
entity's alias_keys); an alias written by each writer (a bundle's new entity, the gap-healer's aliases, the
ontology) is found, and its node is gone with its entity (an orphan's removal, a dropped tenant); the start-up sync
makes a graph written without the nodes whole again, and removes a node left behind."""

from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Any

import pytest

from codex_lineage.replay_graph_dump import drop_tenant
from gap_healer.aliases import apply_aliases
from gap_healer.lint import DELETE_ORPHAN
from moe_core.knowledge.graph import SHARED_TENANT, GraphDB, GraphStore, ontology
from moe_core.knowledge.graph.alias_nodes import ensure_alias_nodes
from moe_core.knowledge.graph.bundles_graph import CREATE_ENTITIES, resolve_many
from moe_core.knowledge.graph.checks import RESOLVE_MANY, resolve_names
from moe_core.knowledge.graph.names import entity_uid, normalize
from moe_core.knowledge.graph.store import CREATE_ENTITY, RESOLVE_ENTITY
from moe_core.knowledge.graph.vocab import visible_tenants
from moe_core.policy.domains import KNOWN_DOMAINS, graph_domains
from tests.graph.helpers import purge

pytestmark = pytest.mark.infra

ENTITY_ALIASES = "MATCH (e:Entity {tenant: $tenant}) UNWIND e.alias_keys AS k RETURN e.uid AS uid, k AS key"
ALIAS_NODES = """
MATCH (a:AliasKey {tenant: $tenant})
OPTIONAL MATCH (a)-[:ALIAS_OF]->(e:Entity)
RETURN a.uid AS uid, a.key AS key, e.uid AS linked
"""


async def in_step(db: GraphDB, tenant: str) -> set[tuple[str, str]]:
    """The tenant's (entity uid, alias key) pairs, asserted to be the same by its entities and its alias nodes."""
    wanted = {(r["uid"], r["key"]) for r in await db.read(ENTITY_ALIASES, tenant=tenant)}
    nodes = await db.read(ALIAS_NODES, tenant=tenant)
    assert all(r["linked"] == r["uid"] for r in nodes)
    assert sorted((r["uid"], r["key"]) for r in nodes) == sorted(wanted)
    return wanted


async def imported(db: GraphDB, tenant: str, rows: list[dict[str, Any]]) -> None:
    """A bundle's new entities, written as bundles_graph.apply writes them."""
    await db.write(CREATE_ENTITIES, rows=[{"uid": entity_uid(tenant, normalize(r["name"])), "key": normalize(r["name"]),
                                           "type": "Concept", "domain": "technical", **r,
                                           "alias_keys": [normalize(a) for a in r["aliases"]]} for r in rows],
                   tenant=tenant, source="imported", now=time.time(), import_id="test")


async def db_hits(db: GraphDB, query: Any, **params: Any) -> int:
    async with db.driver.session(database=db.database) as session:
        summary = await (await session.run("PROFILE " + query, params)).consume()

    def hits(plan: dict[str, Any]) -> int:
        return int(plan.get("dbHits", 0)) + sum(hits(c) for c in plan.get("children", []))

    return hits(summary.profile or {})


async def test_the_alias_lookups_do_not_grow_with_the_entities_a_tenant_sees(graph_db: GraphDB, tenant: str) -> None:
    m = uuid.uuid4().hex[:6]
    keys = sorted({f"frobnik {m}", f"kubernetes cluster {m}", "blood thinner", f"own alias {m}"})
    await imported(graph_db, tenant, [{"name": f"Owner {m}", "aliases": [f"Own alias {m}"]}])
    params = {"keys": keys, "key": f"own alias {m}", "tenants": visible_tenants(tenant), "tenant": tenant}
    lookups = {"RESOLVE_MANY": RESOLVE_MANY, "KNOWN_DOMAINS": KNOWN_DOMAINS, "RESOLVE_ENTITY": RESOLVE_ENTITY}
    await graph_db.read(RESOLVE_MANY, **params)  # planned once
    before = {name: await db_hits(graph_db, q, **params) for name, q in lookups.items()}
    await imported(graph_db, tenant, [{"name": f"Filler {m} {i}", "aliases": [f"Filler {m} {i} alias"]}
                                      for i in range(400)])
    after = {name: await db_hits(graph_db, q, **params) for name, q in lookups.items()}
    for name in lookups:  # before: each lookup read the alias_keys of all 400 new entities (and the 327 shared ones)
        assert after[name] <= before[name] + 10, (name, before, after)
    found = await resolve_names(graph_db, tenant, [f"Own alias {m}", "Blood thinner", f"Frobnik {m}"])
    assert found.uids == {f"own alias {m}": entity_uid(tenant, f"owner {m}"),
                          "blood thinner": entity_uid(SHARED_TENANT, "anticoagulant")}


async def test_an_alias_each_writer_writes_is_found_and_goes_with_its_entity(graph_db: GraphDB, tenant: str) -> None:
    m = uuid.uuid4().hex[:6]
    await imported(graph_db, tenant, [{"name": f"Imported {m}", "aliases": [f"Imp {m}", f"Imp two {m}"]}])
    store = GraphStore(graph_db)
    healed = entity_uid(tenant, f"healed {m}")
    await graph_db.write(CREATE_ENTITY, uid=healed, name=f"Healed {m}", key=f"healed {m}", tenant=tenant,
                         type="Concept", domain="technical", source="gap_healer", now=time.time())
    assert (await apply_aliases(graph_db, tenant, healed, [f"Heal {m}", "Blood thinner"])).kept == [f"Heal {m}"]
    assert len(await in_step(graph_db, tenant)) == 3
    assert await resolve_many(store, tenant, [f"imp two {m}", f"heal {m}"]) == {
        f"imp two {m}": entity_uid(tenant, f"imported {m}"), f"heal {m}": healed}
    assert (await store.resolve(tenant, f"Heal {m}") or {}).get("uid") == healed
    assert await graph_domains(graph_db, tenant, {f"imp {m}"}) == {f"imp {m}": {"technical"}}

    assert await apply_aliases(graph_db, tenant, healed, [f"Healed again {m}"])  # the aliases replaced
    assert (await store.resolve(tenant, f"Heal {m}")) is None
    assert (await store.resolve(tenant, f"Healed again {m}") or {}).get("uid") == healed
    assert await graph_db.write(DELETE_ORPHAN, uid=healed, shared=SHARED_TENANT)  # the gap-healer's lint
    assert len(await in_step(graph_db, tenant)) == 2
    assert (await store.resolve(tenant, f"Healed again {m}")) is None
    await drop_tenant(graph_db, tenant)  # a tenant dropped: no alias node left
    assert await graph_db.read(ALIAS_NODES, tenant=tenant) == []
    assert (await resolve_names(graph_db, tenant, [f"Imp {m}"])).uids == {}


async def test_the_ontology_and_the_start_up_sync_keep_the_alias_nodes_whole(graph_db: GraphDB, tenant: str) -> None:
    onto = dataclasses.replace(ontology.load(), digest=f"test-{uuid.uuid4().hex}")
    try:
        assert await ontology.seed(graph_db, onto)  # every MERGE again
    finally:
        await graph_db.write("MATCH (s:OntologySeed {digest: $digest}) DELETE s", digest=onto.digest)
    assert len(await in_step(graph_db, SHARED_TENANT)) == sum(len(e.alias_keys) for e in onto.entities)

    m = uuid.uuid4().hex[:6]
    await imported(graph_db, tenant, [{"name": f"Kept {m}", "aliases": [f"Kept alias {m}", f"Lost alias {m}"]}])
    kept = entity_uid(tenant, f"kept {m}")
    # as an older version left it: one alias node missing, one stale, one whose entity is gone
    await graph_db.write("MATCH (a:AliasKey {tenant: $tenant, key: $key}) DETACH DELETE a", tenant=tenant,
                         key=f"lost alias {m}")
    await graph_db.write("MATCH (e:Entity {uid: $uid}) CREATE (:AliasKey {uid: $uid, key: 'stale', tenant: $tenant})"
                         "-[:ALIAS_OF]->(e)", uid=kept, tenant=tenant)
    await graph_db.write("CREATE (:AliasKey {uid: 'gone', key: $key, tenant: $tenant})", key=f"kept alias {m}",
                         tenant=tenant)
    assert (await resolve_names(graph_db, tenant, [f"Lost alias {m}"])).uids == {}
    done = await ensure_alias_nodes(graph_db)
    assert done["synced"] >= 1 and done["orphans"] >= 1
    assert await in_step(graph_db, tenant) == {(kept, f"kept alias {m}"), (kept, f"lost alias {m}")}
    assert (await resolve_names(graph_db, tenant, [f"Lost alias {m}"])).uids == {f"lost alias {m}": kept}
    await purge(graph_db, tenant)
    assert await graph_db.read(ALIAS_NODES, tenant=tenant) == []
