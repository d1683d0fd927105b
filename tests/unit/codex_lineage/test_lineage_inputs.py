"""The lineage of a graph task names the facts and documents it used, a cache hit its cache entry (input facets of
the knowledge graph and the semantic cache); records without them keep the events they always had."""

from __future__ import annotations

from typing import Any

import pytest

from codex_lineage.facets import facet_schema
from codex_lineage.lineage import Datasets, Lineage
from moe_core.audit.records import from_kafka, message_types
from moe_core.contracts import Answer, Source, TaskResult, Topics, deadline_in

pytestmark = pytest.mark.unit
TOPICS = Topics.for_namespace("moe")
LINEAGE = Lineage(TOPICS, "moe-sovereign", Datasets("kafka://k:9092", "neo4j://n:7687", "chroma://c:8000"))


def _events(message: Any, topic: str, stage: str) -> list[dict[str, Any]]:
    record = from_kafka(topic, 0, 1, 0, b"r1", message.model_dump_json().encode(), {"x-moe-producer": stage},
                        message_types(TOPICS))
    return LINEAGE.events(record)


def _input(events: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [i for e in events for i in e["inputs"] if i["name"] == name]
    assert len(found) == 2 and found[0] == found[1]  # START and COMPLETE
    return dict(found[0])


def test_a_graph_result_names_its_facts_and_documents() -> None:
    sources = [Source(kind="graph", ref="rel-2"), Source(kind="graph", ref="rel-1"),
               Source(kind="document", ref="doc-1"), Source(kind="web", ref="https://x")]
    result = TaskResult(response_id="r1", tenant_id="acme", deadline_at=deadline_in(60), task_id="t1", kind="graph",
                        category="general", sources=sources)
    graph = _input(_events(result, TOPICS.results, "graph-rag"), "knowledge-graph")
    facet = graph["inputFacets"]["moe_graph_facts"]
    assert (facet["factIds"], facet["documents"]) == (["rel-1", "rel-2"], ["doc-1"])
    assert facet["_schemaURL"].endswith("MoeGraphFactsInputDatasetFacet.json#/$defs/MoeGraphFactsInputDatasetFacet")
    plain = _input(_events(result.model_copy(update={"sources": []}), TOPICS.results, "graph-rag"), "knowledge-graph")
    assert plain == {"namespace": "neo4j://n:7687", "name": "knowledge-graph", "facets": {}}  # as before


def test_a_cache_hit_names_its_cache_entry() -> None:
    hit = Answer(response_id="r1", tenant_id="acme", deadline_at=deadline_in(60), mode="m", cache_hit=True,
                 cache_key="entry-7")
    cache = _input(_events(hit, TOPICS.answers, "planner"), "semantic-cache")
    assert cache["namespace"] == "chroma://c:8000" and cache["inputFacets"]["moe_cache_entry"]["cacheKey"] == "entry-7"
    schema = facet_schema("MoeCacheEntryInputDatasetFacet")
    assert schema is not None
    assert schema["$defs"]["MoeCacheEntryInputDatasetFacet"]["allOf"][0]["$ref"].endswith("/InputDatasetFacet")
