"""graph-rag's lexicon of a tenant, read again after a write: only the entities written since (stamped with the
tenant's lexicon counter), and the whole lexicon when one was deleted (a new epoch), renamed, or the tenant's graph
version node was deleted (real Neo4j)."""

from __future__ import annotations

from typing import Any

import pytest

from gap_healer.aliases import apply_aliases
from gap_healer.lint import Linter
from graph_rag.retrieval import LEXICON, LEXICON_SINCE, Retriever
from moe_core.knowledge.graph import GraphDB, GraphStore, Provenance, Triple
from moe_core.knowledge.graph.trust import TrustPolicy
from tests.graph.helpers import purge

pytestmark = pytest.mark.infra

DROP_RELATIONS = "MATCH ()-[r:REL {tenant: $tenant}]->() DELETE r"


class Recorded(GraphDB):
    """The real database; remembers which lexicon query each read was and how many entities it returned."""

    def __init__(self, db: GraphDB) -> None:
        self.__dict__.update(db.__dict__)
        self.reads: list[tuple[str, int]] = []

    async def read(self, query: Any, **params: Any) -> list[dict[str, Any]]:
        rows = await super().read(query, **params)
        kind = {LEXICON: "all", LEXICON_SINCE: "since"}.get(query)
        if kind is not None:
            self.reads.append((kind, len(rows[0]["entities"])))
        return rows


async def learn(store: GraphStore, tenant: str, subject: str, obj: str, origin: str,
                source: Any = "extracted") -> int:
    await store.write_triple(Triple(subject=subject, relation="RELATED_TO", object=obj, confidence=0.9),
                             Provenance(tenant=tenant, source=source, origin=origin))
    return (await store.versions([tenant]))[tenant]


async def test_after_a_write_only_the_new_entities_are_read(graph_db: GraphDB, tenant: str) -> None:
    store, db = GraphStore(graph_db), Recorded(graph_db)
    retriever = Retriever(db)
    first = await retriever.lexicon(tenant, await learn(store, tenant, "Quorvane Pump", "Brelton Valve", "a1"))
    assert {"quorvane pump", "brelton valve"} <= set(first.keys)
    again = await retriever.lexicon(tenant, await learn(store, tenant, "Quorvane Pump", "Stiltor Gasket", "a2"))
    assert again is first and "stiltor gasket" in again.keys and "quorvane pump" in again.keys
    version = await learn(store, tenant, "Brelton Valve", "Quorvane Pump", "a3")  # a relation, no new entity
    assert await retriever.lexicon(tenant, version) is first
    assert db.reads == [("all", 2), ("since", 1), ("since", 0)]


async def test_an_alias_given_later_is_read_with_the_entity(graph_db: GraphDB, tenant: str) -> None:
    store, db = GraphStore(graph_db), Recorded(graph_db)
    retriever = Retriever(db)
    version = await learn(store, tenant, "Marrowick Cell", "Tenpoint Grid", "b1", source="gap_healer")
    lexicon = await retriever.lexicon(tenant, version)
    uid = lexicon.keys["marrowick cell"].uid
    assert (await apply_aliases(graph_db, tenant, uid, ["Marrow Cell"])).kept == ["Marrow Cell"]
    await store.db.write("MATCH (v:GraphVersion {tenant: $tenant}) SET v.n = v.n + 1", tenant=tenant)
    after = await retriever.lexicon(tenant, (await store.versions([tenant]))[tenant])
    assert after is lexicon and after.keys["marrow cell"].uid == uid
    assert db.reads == [("all", 2), ("since", 1)]


async def test_a_deleted_entity_leaves_the_lexicon_by_a_whole_read(graph_db: GraphDB, tenant: str) -> None:
    store, db = GraphStore(graph_db), Recorded(graph_db)
    retriever = Retriever(db)
    await learn(store, tenant, "Oskarite Beam", "Pellfield Truss", "c1")
    first = await retriever.lexicon(tenant, await learn(store, tenant, "Vantoo Rivet", "Pellfield Truss", "c2"))
    await graph_db.write(DROP_RELATIONS, tenant=tenant)
    await learn(store, tenant, "Vantoo Rivet", "Pellfield Truss", "c3")  # these two keep a relation
    deleted = await Linter(graph_db, TrustPolicy()).lint(tenant, ["orphans"])  # a new epoch, the version bumped
    assert [(d.kind, d.details["name"]) for d in deleted] == [("entity", "Oskarite Beam")]
    after = await retriever.lexicon(tenant, (await store.versions([tenant]))[tenant])
    assert after is not first and "oskarite beam" not in after.keys and "vantoo rivet" in after.keys
    assert db.reads == [("all", 3), ("since", 0), ("all", 2)]


async def test_a_purged_tenant_is_read_whole_again(graph_db: GraphDB, tenant: str) -> None:
    """A version node deleted and made again counts from 0: once its version passes the cached one (the context
    cache's key cannot tell them apart before: graph_rag.app), its new epoch makes the read a whole one."""
    store, db = GraphStore(graph_db), Recorded(graph_db)
    retriever = Retriever(db)
    first = await retriever.lexicon(tenant, await learn(store, tenant, "Dravel Coil", "Instep Relay", "d1"))
    await purge(graph_db, tenant)  # entities and the version node: the counter and the epoch are gone
    await learn(store, tenant, "Hollin Spring", "Instep Relay", "d2")
    after = await retriever.lexicon(tenant, await learn(store, tenant, "Hollin Spring", "Kessel Plate", "d3"))
    assert after is not first and "dravel coil" not in after.keys and "hollin spring" in after.keys
    assert [kind for kind, _ in db.reads] == ["all", "since", "all"]


async def test_a_context_read_just_after_an_unrelated_write_is_kept_and_cached(
        graph_db: GraphDB, tenant: str, infra: dict[str, str]) -> None:
    from graph_rag.app import GraphRag
    from graph_rag.retrieval import CONTEXT
    from graph_rag.settings import GraphRagSettings
    from moe_core.runtime.bus import Bus
    from moe_core.runtime.stores import redis_client
    from tests.support.namespaces import new_namespace

    store, db = GraphStore(graph_db), Recorded(graph_db)
    settings = GraphRagSettings(redis_url=infra["redis"], topic_namespace=new_namespace("l"), graph_documents=False)
    redis = redis_client(settings.redis_url)
    rag = GraphRag(settings, Bus(settings), db, redis)
    contexts: list[int] = []
    read = Recorded.read

    async def counting(self: Recorded, query: Any, **params: Any) -> list[dict[str, Any]]:
        contexts.append(query == CONTEXT)
        return await read(self, query, **params)

    db.read = counting.__get__(db)  # type: ignore[method-assign]
    try:
        await learn(store, tenant, "Tarnwell Pump", "Osgood Valve", "e1")
        await rag.context(tenant, "What is a Tarnwell Pump?", {})  # this process now knows the version
        await learn(store, tenant, "Ferrowind Shaft", "Osgood Valve", "e2")  # moves it; not the next question's names
        contexts.clear()
        first = await rag.context(tenant, "How does the Tarnwell Pump fail?", {})
        # not built twice, and one statement: the context query brought the cached lexicon up to date
        assert "Tarnwell Pump RELATED_TO Osgood Valve" in first["content"] and contexts == [True]
        again = await rag.context(tenant, "How does the Tarnwell Pump fail?", {})
        assert again["data"]["cached"] is True and sum(contexts) == 1  # kept under the current versions
    finally:
        await redis.aclose()
