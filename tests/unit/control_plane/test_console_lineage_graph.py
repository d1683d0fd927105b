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


def test_the_provenance_of_the_facts_joins_the_runs_already_drawn_with_details() -> None:
    from control_plane.console.lineage_graph import provenance_elements
    from moe_core.audit.fact_lineage import Graph

    g = Graph("answer:r1")
    g.node("answer:r1", "answer", "r1")
    g.node("run:g", "run", "graph-rag.graph")
    g.node("fact:rel-1", "fact", "A USES B", fact_id="rel-1")
    g.node("import:kcs-1", "import", "kcs-1", status="applied", approvals_required=1, importer="p-1", domains=None)
    g.node("approval:kcs-1:p-2", "approval", "approved by p-2", principal="p-2", at="2026-11-24T07:00:00+00:00")
    g.node("document:doc-1", "document", "Inventory", document_id="doc-1", sha256="sha256:ab")
    for s, t, r in (("run:g", "answer:r1", "answered"), ("fact:rel-1", "run:g", "used_by"),
                    ("import:kcs-1", "fact:rel-1", "wrote"), ("approval:kcs-1:p-2", "import:kcs-1", "approved"),
                    ("document:doc-1", "import:kcs-1", "source_of")):
        g.edge(s, t, r)
    out = provenance_elements(g.as_dict(), {"run:g"})
    nodes = {e["data"]["id"]: e["data"] for e in out if "source" not in e["data"]}
    assert set(nodes) == {"fact:rel-1", "import:kcs-1", "approval:kcs-1:p-2", "document:doc-1"}  # no answer, run
    assert nodes["import:kcs-1"]["details"] == "status: applied; importer: p-1; approvals required: 1"
    assert nodes["document:doc-1"]["details"] == "document: doc-1; digest: sha256:ab"
    assert nodes["approval:kcs-1:p-2"]["details"] == "principal: p-2; at: 2026-11-24T07:00:00+00:00"
    edges = {(e["data"]["source"], e["data"]["target"]) for e in out if "source" in e["data"]}
    assert edges == {("fact:rel-1", "run:g"), ("import:kcs-1", "fact:rel-1"), ("approval:kcs-1:p-2", "import:kcs-1"),
                     ("document:doc-1", "import:kcs-1")}  # the answer is the page: no edge to it
    assert provenance_elements(None, {"run:g"}) == []


def test_a_fact_released_from_the_quarantine_shows_the_entry_its_approvals_and_the_answer_it_came_from() -> None:
    from control_plane.console.lineage_graph import provenance_elements
    from moe_core.audit.fact_lineage import Graph

    g = Graph("answer:r2")
    g.node("answer:r2", "answer", "r2")
    g.node("run:g", "run", "graph-rag.graph")
    g.node("fact:rel-9", "fact", "rel-9", fact_id="rel-9")
    g.node("quarantine:q-1", "quarantine", "quarantine q-1", status="released", reason="protected domain medical",
           approvals_required=2)
    for who in ("p-1", "p-2"):
        g.node(f"approval:quarantine:q-1:{who}", "approval", f"approved by {who}", principal=who)
        g.edge(f"approval:quarantine:q-1:{who}", "quarantine:q-1", "approved")
    g.node("answer:r1", "answer", "r1", source_expert="medical", source_model="m")
    for s, t, r in (("run:g", "answer:r2", "answered"), ("fact:rel-9", "run:g", "used_by"),
                    ("quarantine:q-1", "fact:rel-9", "released"), ("answer:r1", "quarantine:q-1", "held")):
        g.edge(s, t, r)
    out = provenance_elements(g.as_dict(), {"run:g"})
    nodes = {e["data"]["id"]: e["data"] for e in out if "source" not in e["data"]}
    assert set(nodes) == {"fact:rel-9", "quarantine:q-1", "approval:quarantine:q-1:p-1",
                          "approval:quarantine:q-1:p-2", "answer:r1"}  # not the page's own answer r2
    assert nodes["quarantine:q-1"]["details"] == ("status: released; why: protected domain medical; "
                                                  "approvals required: 2")
    assert nodes["answer:r1"]["details"] == "expert: medical; model: m"
    edges = {(e["data"]["source"], e["data"]["target"]) for e in out if "source" in e["data"]}
    assert edges == {("fact:rel-9", "run:g"), ("quarantine:q-1", "fact:rel-9"), ("answer:r1", "quarantine:q-1"),
                     ("approval:quarantine:q-1:p-1", "quarantine:q-1"),
                     ("approval:quarantine:q-1:p-2", "quarantine:q-1")}


def test_graph_runs_collects_the_facts_each_run_used() -> None:
    from moe_core.audit.fact_lineage import graph_runs

    facts = {"moe_graph_facts": {"factIds": ["rel-2", "rel-1"], "documents": []}}
    events = [_event("START", "g", "graph-rag.graph", [("neo4j://n:7687", "knowledge-graph", facts)], []),
              _event("COMPLETE", "g", "graph-rag.graph", [("neo4j://n:7687", "knowledge-graph", facts)], []),
              _event("START", "e", "expert-worker.expert", [(KAFKA, "moe.tasks.expert.v1", {})], [])]
    assert graph_runs(events) == {"g": ("graph-rag.graph", ["rel-1", "rel-2"])}
