"""Lineage edges to the knowledge graph and the semantic cache on the real broker and audit store: a graph task's
result names the facts and documents it used, a cache hit names its cache entry (OpenLineage input facets of the
run's input datasets), and the lineage API finds every request that used a fact or a cache entry."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from moe_core.contracts import Answer, Source, TaskResult, deadline_in
from tests.lineage.conftest import Keys, LineageFleet

pytestmark = pytest.mark.infra


def _used_by(fleet: LineageFleet, key: str, **asked: str) -> list[dict[str, Any]]:
    """The API's answer once it lists something (codex-lineage records the messages within seconds)."""
    deadline, found = time.monotonic() + 60, []
    while time.monotonic() < deadline and not found:
        reply = fleet.get("/api/v1/lineage", key, **asked)
        assert reply.status_code == 200, reply.text
        found = reply.json()["data"]
        time.sleep(0 if found else 0.5)
    return found


def test_a_requests_lineage_names_the_graph_facts_and_the_cache_entry_that_answered_it(
        lineage_fleet: LineageFleet, keys: Keys) -> None:
    tag = uuid.uuid4().hex[:10]
    graph_rid, cache_rid, fact, cache_key = f"g-{tag}", f"c-{tag}", f"rel-{tag}", f"cache-{tag}"
    common: dict[str, Any] = {"tenant_id": keys.tenant, "deadline_at": deadline_in(60)}
    result = TaskResult(response_id=graph_rid, task_id="t1", kind="graph", category="general", content="facts",
                        sources=[Source(kind="graph", ref=fact, title="aspirin TREATS pain"),
                                 Source(kind="graph", ref=f"other-{tag}"),
                                 Source(kind="document", ref=f"doc-{tag}", title="leaflet")], **common)
    hit = Answer(response_id=cache_rid, mode="moe-orchestrator", content="cached", cache_hit=True,
                 cache_key=cache_key, **common)
    lineage_fleet.publish([(result, "results")], "graph-rag")
    lineage_fleet.publish([(hit, "answers")], "planner")

    [by_fact] = _used_by(lineage_fleet, keys.admin, fact_id=fact)
    assert (by_fact["response_id"], by_fact["tenant_id"], by_fact["job"]) == (graph_rid, keys.tenant, "graph-rag.graph")
    [by_entry] = _used_by(lineage_fleet, keys.admin, cache_key=cache_key)
    assert (by_entry["response_id"], by_entry["job"]) == (cache_rid, "planner.cache")

    events = lineage_fleet.get("/api/v1/lineage", keys.admin, response_id=graph_rid).json()["events"]
    graph_inputs = [i for e in events for i in e["inputs"] if i["name"] == "knowledge-graph"]
    assert graph_inputs and all(i["namespace"].startswith("neo4j://") for i in graph_inputs)
    facet = graph_inputs[0]["inputFacets"]["moe_graph_facts"]
    assert (facet["factIds"], facet["documents"]) == (sorted([fact, f"other-{tag}"]), [f"doc-{tag}"])
    cache_events = lineage_fleet.get("/api/v1/lineage", keys.admin, response_id=cache_rid).json()["events"]
    [entry] = {i["inputFacets"]["moe_cache_entry"]["cacheKey"] for e in cache_events for i in e["inputs"]
               if i["name"] == "semantic-cache"}
    assert entry == cache_key
    assert lineage_fleet.get("/api/v1/lineage", keys.admin, fact_id=f"never-{tag}").json()["data"] == []
    # another tenant's admin: the requests are not listed, and their lineage reads like an unknown request's
    for asked in ({"fact_id": fact}, {"cache_key": cache_key}):
        assert lineage_fleet.get("/api/v1/lineage", keys.tenant_admin, **asked).json()["data"] == []
    assert lineage_fleet.get("/api/v1/lineage", keys.tenant_admin, response_id=graph_rid).json() == {"events": []}


def test_the_search_by_fact_or_cache_entry_has_an_index_on_what_it_filters(lineage_fleet: LineageFleet) -> None:
    """The search filters the lineage events' inputs with the expression a GIN index (audit_log_lineage_inputs,
    jsonb_path_ops, lineage rows only) is built on, so on a large store Postgres answers it from the index instead
    of parsing every event (on a test's small store the planner rightly prefers a scan, so the plan is not asserted:
    the index's expression and the query's are)."""
    import asyncio

    import asyncpg

    from codex_lineage.api import USED_BY

    async def index() -> str:
        conn = await asyncpg.connect(lineage_fleet.owner_dsn)
        try:
            return str(await conn.fetchval("SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = $2",
                                           lineage_fleet.schema, "audit_log_lineage_inputs"))
        finally:
            await conn.close()

    found = asyncio.run(index())
    assert "USING gin" in found and "jsonb_path_ops" in found and "(kind = 'lineage'::text)" in found, found
    assert "((body)::jsonb -> 'inputs'::text)" in found, found
    assert "(body::jsonb -> 'inputs') @> $1::jsonb" in USED_BY and "kind = 'lineage'" in USED_BY
