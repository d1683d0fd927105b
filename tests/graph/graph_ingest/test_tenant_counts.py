"""The counts an ingest run reports (codex-lineage's drift checks read them) are the graph's, on the real Neo4j, OPA and
Redis: "after" is counted in the write transaction; "before" is counted in the read that resolves the names, unless
the tenant's version has not moved since this replica's last count of it (measure.Sizes: a count is a db hit per
entity and relation of the tenant, issue 52). Another writer's entity (version moved) is in the next "before"; an
entity deleted by the lint (a new epoch) is gone from it. "after" adds what the run made to "before" while the version
shows no other writer since (a count of the whole tenant is not taken on every answer); a write that moves no version
is not hidden for long: it is in the first count taken after it (at the latest after MAX_STEPS runs)."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Any

import pytest

from gap_healer.lint import DELETE_ORPHAN
from graph_ingest.app import GraphIngest
from moe_core.knowledge.graph import SHARED_TENANT, GraphDB, GraphStore, Provenance, Triple
from moe_core.knowledge.graph.measure import MAX_STEPS, tenant_size
from moe_core.knowledge.graph.names import entity_uid
from tests.graph.graph_ingest.conftest import AuditKept
from tests.graph.graph_ingest.test_learning_journey import ingest_event

pytestmark = pytest.mark.infra

# an entity as a writer that moves no GraphVersion would leave it
QUIET_ENTITY = "CREATE (:Entity {uid: $uid, tenant: $tenant, key: $key, name: $key})"


async def learned(ingest: GraphIngest, tenant: str, triples: list[tuple[str, str]]) -> dict[str, Any]:
    """The stats of an answer of `triples` (subject PART_OF object), learned as graph-ingest learns it."""
    event = ingest_event(tenant, uuid.uuid4().hex[:6], knowledge_type="technical", source_expert="technical")
    await ingest.memo.put_first(event.response_id, json.dumps(
        [{"subject": s, "relation": "PART_OF", "object": o, "confidence": 0.9} for s, o in triples]))
    await ingest.on_ingest(event)
    audit = ingest.bus
    assert isinstance(audit, AuditKept)
    [done] = [e for e in audit.events if e.action == "ingested" and e.response_id == event.response_id]
    stats: dict[str, Any] = done.details["stats"]
    return stats


async def test_every_count_an_ingest_run_reports_is_the_graphs(ingest: GraphIngest, graph_db: GraphDB,
                                                               tenant: str) -> None:
    m = uuid.uuid4().hex[:6]
    first = await learned(ingest, tenant, [(f"Frob {m}", f"Cluster {m}"), (f"Knob {m}", f"Cluster {m}")])
    assert first["before"] == {"entities": 0, "relations": 0}
    assert first["after"] == {"entities": 3, "relations": 2} == await tenant_size(graph_db, tenant)

    second = await learned(ingest, tenant, [(f"Frob {m}", f"Rack {m}")])  # nothing else wrote: not counted again
    assert second["before"] == first["after"]
    assert second["after"] == {"entities": 4, "relations": 3} == await tenant_size(graph_db, tenant)

    # another writer (the gap-healer, an import, a second replica) moves the tenant's version: counted again
    await GraphStore(graph_db).write_triple(Triple(subject=f"Other {m}", relation="PART_OF", object=f"Rack {m}"),
                                            Provenance(tenant=tenant, source="gap_healer", origin=f"o-{m}"))
    third = await learned(ingest, tenant, [(f"Knob {m}", f"Rack {m}")])
    assert third["before"] == {"entities": 5, "relations": 4}
    assert third["after"] == {"entities": 5, "relations": 5} == await tenant_size(graph_db, tenant)

    # two entities written without moving the version, then the lint deletes one of them (a new epoch): counted again
    strays = [entity_uid(tenant, f"stray {m} {i}") for i in range(2)]
    for uid in strays:
        await graph_db.write(QUIET_ENTITY, uid=uid, tenant=tenant, key=uid)
    assert await graph_db.write(DELETE_ORPHAN, uid=strays[0], shared=SHARED_TENANT)
    fourth = await learned(ingest, tenant, [(f"Frob {m}", f"Shelf {m}")])
    assert fourth["before"] == {"entities": 6, "relations": 5}
    assert fourth["after"] == {"entities": 7, "relations": 6} == await tenant_size(graph_db, tenant)

    # a write that moves no version (none should) is in neither the next "before" nor its "after", which adds what
    # the run made to the "before" (no count of the whole tenant on every answer: issue 52); the graph counts the
    # tenant again once its count was carried MAX_STEPS times, and there it shows, not lost
    await graph_db.write(QUIET_ENTITY, uid=entity_uid(tenant, f"quiet {m}"), tenant=tenant, key=f"quiet {m}")
    fifth = await learned(ingest, tenant, [(f"Knob {m}", f"Shelf {m}")])
    assert fifth["before"] == fourth["after"]
    assert fifth["after"] == {"entities": 7, "relations": 7}
    carried = ingest.sizes.last(tenant)
    assert carried is not None and carried.steps > 0  # carried, not counted
    ingest.sizes.counted(tenant, replace(carried, steps=MAX_STEPS))  # as after MAX_STEPS - 1 more such runs
    sixth = await learned(ingest, tenant, [(f"Frob {m}", f"Bin {m}")])
    assert sixth["before"] == fifth["after"]
    assert sixth["after"] == {"entities": 9, "relations": 8} == await tenant_size(graph_db, tenant)
