"""The console's lineage page: a request's OpenLineage events as graph elements (stage runs, datasets, edges)."""

from __future__ import annotations

from typing import Any

import pytest

from control_plane.console.lineage_graph import elements

pytestmark = pytest.mark.unit
KAFKA = "kafka://k:9092"


def _event(kind: str, run: str, job: str, inputs: list[tuple[str, str, dict[str, Any]]],
           outputs: list[tuple[str, str]], facets: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"eventType": kind, "run": {"runId": run, "facets": facets or {}}, "job": {"name": job},
            "inputs": [{"namespace": n, "name": d, **({"inputFacets": f} if f else {})} for n, d, f in inputs],
            "outputs": [{"namespace": n, "name": d} for n, d in outputs]}


def test_runs_datasets_and_edges_once_each() -> None:
    facts = {"moe_graph_facts": {"factIds": ["rel-1"], "documents": []}}
    events = [_event("START", "p", "request", [], [(KAFKA, "moe.requests.v1")]),
              _event("START", "g", "graph-rag.graph", [(KAFKA, "moe.tasks.graph.v1", {}),
                                                       ("neo4j://n:7687", "knowledge-graph", facts)],
                     [(KAFKA, "moe.results.v1")]),
              _event("COMPLETE", "g", "graph-rag.graph", [(KAFKA, "moe.tasks.graph.v1", {}),
                                                          ("neo4j://n:7687", "knowledge-graph", facts)],
                     [(KAFKA, "moe.results.v1")], {"moe_model": {"model": "m", "server": "s"}}),
              _event("FAIL", "x", "expert-worker.expert", [(KAFKA, "moe.tasks.expert.v1", {})],
                     [(KAFKA, "moe.results.v1")])]
    found = {e["data"]["id"]: e["data"] for e in elements(events)}
    runs = {d["label"]: d for d in found.values() if d.get("kind") == "run"}
    assert set(runs) == {"graph-rag.graph", "expert-worker.expert"}  # the parent run is left out
    assert runs["graph-rag.graph"]["model"] == "m @ s" and runs["expert-worker.expert"]["failed"] is True
    graph = found["dataset:neo4j://n:7687:knowledge-graph"]
    assert (graph["label"], graph["facts"]) == ("neo4j: knowledge-graph", ["rel-1"])
    edges = {(d["source"], d["target"]) for d in found.values() if "source" in d}
    assert edges == {("dataset:kafka://k:9092:moe.tasks.graph.v1", "run:g"),
                     ("dataset:neo4j://n:7687:knowledge-graph", "run:g"),
                     ("run:g", "dataset:kafka://k:9092:moe.results.v1"),
                     ("dataset:kafka://k:9092:moe.tasks.expert.v1", "run:x"),
                     ("run:x", "dataset:kafka://k:9092:moe.results.v1")}
