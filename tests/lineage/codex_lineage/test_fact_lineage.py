"""Where a fact in an answer came from, on the real broker and stores (Kafka, Postgres, Neo4j, Chroma, OPA): a tenant
uploads a document, imports a bundle naming it as the source, another admin approves (four eyes); the relation in
Neo4j keeps the import and the document as its provenance; an answer whose graph task used the fact (published as
graph-rag and the merger publish them) leads, through codex-lineage's lineage graph, to the fact, the approved import
with its approval (principal and time) and the source document; the document's and the import's downstream list
the answer; another tenant's admin gets 404 for all of them. A fact graph-ingest learned leads to the answer or the
memory-ingest event it was learned from (its `ingested` event's `learned_from`; older events by their id). A learned
medical triple graph-ingest held in the quarantine and two admins released (four eyes) leads from a later answer that
used it to the quarantine entry (held, why), both approvals (principals, keys, notes) and the answer it was learned
from; that answer's own lineage leads down to the fact released from it. A document chunk a graph-rag run quoted
directly (no import) leads from the answer to the document (`quoted_by`) and from the document to the answer."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fleetlib import api as fleetlib_api

from graph_ingest.provenance import learned_from
from moe_core.contracts import Answer, IngestEvent, Source, TaskResult, deadline_in
from moe_core.knowledge.graph import GraphDB
from moe_core.knowledge.graph.audit import audit_event
from moe_core.knowledge.graph.bundles import BundleEntity, BundleRelation, Origin, Selection, seal
from tests.conftest import Scripted
from tests.lineage.conftest import LineageFleet
from tests.support.keys import new_keys, new_person_keys
from tests.support.namespaces import new_namespace
from tests.support.store_auth import neo4j_auth

pytestmark = pytest.mark.infra
WAIT_S = 90
# a phrase of graph-ingest's system prompt (tests/graph/graph_ingest/test_learning_journey.py)
EXTRACT = "extract at most"
PROVENANCE = "MATCH ()-[r:REL {id: $id}]->() RETURN r.imports AS imports, r.documents AS documents, r.source AS source"


@pytest.fixture(scope="module")
def fleet(graph_lineage_fleet: LineageFleet) -> LineageFleet:
    """The tier's graph fleet (Neo4j for the import's graph writes, Chroma for the tenant's documents, graph-ingest):
    every case here publishes its graph task's result and answer itself, under a tenant of its own."""
    return graph_lineage_fleet


def _call(method: str, url: str, key: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, url, headers={"Authorization": f"Bearer {key}"}, timeout=120, **kwargs)


def _bundle(tag: str) -> tuple[dict[str, Any], str]:
    subject, obj = f"Zorblat Engine {tag}", f"Quandrix Store {tag}"
    origin = Origin(tenant=f"elsewhere-{tag}", exported_at=datetime.now(UTC), exported_by="key:elsewhere",
                    graph_version=1, selection=Selection())
    entities = [BundleEntity(name=subject, type="Software"), BundleEntity(name=obj, type="Software")]
    relation = BundleRelation(subject=subject, relation="USES", object=obj, confidence=0.8, domain="technical")
    return seal(origin, entities, [relation]), f"{subject} USES {obj}"


def _graph(fleet: LineageFleet, path: str, key: str, ready: Any) -> dict[str, Any]:
    """codex-lineage's answer once `ready(graph)` holds (it records the messages within seconds)."""
    deadline, body = time.monotonic() + WAIT_S, {}
    while time.monotonic() < deadline:
        reply = fleet.get(path, key)
        assert reply.status_code in (200, 404), reply.text
        body = reply.json()
        if reply.status_code == 200 and ready(body):
            return dict(body)
        time.sleep(0.5)
    raise AssertionError(f"{path}: {body}")


def _nodes(graph: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [n for n in graph["nodes"] if n["kind"] == kind]


def _edges(graph: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(e["source"], e["target"], e["relation"]) for e in graph["edges"]}


def test_an_answers_fact_leads_to_its_approved_import_and_source_document_and_back(
        fleet: LineageFleet, infra: dict[str, str]) -> None:
    tag = uuid.uuid4().hex[:8]
    tenant = new_namespace("fl")
    importer, stranger = new_keys(
        infra["postgres"], ("fl-importer", "admin", [tenant]), ("fl-stranger", "admin", [f"{tenant}-other"]))
    (approver,) = new_person_keys(infra["postgres"], ("fl-approver", "admin", [tenant]))  # approvals: people's
    cp = fleet.control_plane

    uploaded = _call("POST", f"{cp}/v1/memory/documents", importer,
                     json={"title": f"Platform inventory {tag}", "source": "inventory.md",
                           "text": f"# Platform inventory {tag}\n\nThe Zorblat Engine {tag} uses the Quandrix Store."})
    assert uploaded.status_code == 201, uploaded.text
    document = uploaded.json()
    bundle, title = _bundle(tag)
    unknown = _call("POST", f"{cp}/v1/knowledge/imports", importer, params={"tenant": tenant, "document_id": "doc-no"},
                    content=json.dumps(bundle).encode())
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found", unknown.text
    created = _call("POST", f"{cp}/v1/knowledge/imports", importer,
                    params={"tenant": tenant, "document_id": document["id"]},
                    content=json.dumps(bundle).encode())
    assert created.status_code == 201, created.text
    cs = created.json()
    assert cs["status"] == "pending" and cs["source_document"]["id"] == document["id"], cs
    assert cs["source_document"]["sha256"] == f"sha256:{document['sha256']}", cs
    approved = _call("POST", f"{cp}/v1/knowledge/imports/{cs['id']}/approve", approver, json={"note": "checked"})
    assert approved.status_code == 200 and approved.json()["status"] == "applied", approved.text
    [fact] = approved.json()["result"]["relations_written"]

    # the graph write path: the relation keeps the import and its source document
    async def provenance() -> dict[str, Any]:
        user, password = neo4j_auth()
        db = GraphDB(fleetlib_api.endpoints()["neo4j"], user, password)
        try:
            return (await db.read(PROVENANCE, id=fact))[0]
        finally:
            await db.close()

    kept = asyncio.run(provenance())
    assert kept == {"imports": [cs["id"]], "documents": [f"{document['id']}@sha256:{document['sha256']}"],
                    "source": "imported"}, kept

    # an answer whose graph task used the fact, as graph-rag and the merger publish them
    rid = f"fl-{tag}"
    common: dict[str, Any] = {"response_id": rid, "tenant_id": tenant, "deadline_at": deadline_in(60)}
    fleet.publish([(TaskResult(task_id="t1", kind="graph", category="technical", content=title,
                               sources=[Source(kind="graph", ref=fact, title=title)], **common), "results")],
                  "graph-rag")
    fleet.publish([(Answer(mode="moe-orchestrator", content=f"It uses the Quandrix Store {tag}.", **common),
                    "answers")], "merger")

    graph = _graph(fleet, f"/v1/lineage/answers/{rid}", importer, lambda g: _nodes(g, "approval"))
    [run] = _nodes(graph, "run")
    assert run["label"] == "graph-rag.graph", run
    [fact_node] = _nodes(graph, "fact")
    assert (fact_node["id"], fact_node["label"]) == (f"fact:{fact}", title), fact_node
    [imp] = _nodes(graph, "import")
    assert imp["id"] == f"import:{cs['id']}" and imp["data"]["status"] == "applied", imp
    assert imp["data"]["bundle_digest"] == bundle["digest"] and imp["data"]["relations_written"] == 1, imp
    assert imp["data"]["importer"] == cs["importer_principal"], imp
    [approval] = _nodes(graph, "approval")
    assert approval["data"]["principal"] == approved.json()["approvals"][0]["principal"], approval
    assert approval["data"]["principal"] != imp["data"]["importer"] and approval["data"]["note"] == "checked"
    assert datetime.fromisoformat(approval["data"]["at"]) <= datetime.fromisoformat(imp["data"]["applied_at"])
    [doc] = _nodes(graph, "document")
    assert doc["data"] == {"document_id": document["id"], "sha256": f"sha256:{document['sha256']}",
                           "title": document["title"], "source": "inventory.md"}, doc
    assert {(doc["id"], imp["id"], "source_of"), (approval["id"], imp["id"], "approved"),
            (imp["id"], fact_node["id"], "wrote"), (fact_node["id"], run["id"], "used_by"),
            (run["id"], f"answer:{rid}", "answered")} <= _edges(graph), graph["edges"]

    # downstream: from the document and from the import to the answer
    for path in (f"/v1/lineage/documents/{document['id']}", f"/v1/lineage/imports/{cs['id']}"):
        down = _graph(fleet, path, importer, lambda g: _nodes(g, "answer"))
        assert [n["id"] for n in _nodes(down, "answer")] == [f"answer:{rid}"], down
        assert (f"import:{cs['id']}", f"fact:{fact}", "wrote") in _edges(down), down["edges"]

    # the console's source: the control plane's lineage of the request carries the same provenance
    console = _call("GET", f"{cp}/v1/lineage/{rid}", importer).json()
    assert {n["kind"] for n in console["provenance"]["nodes"]} >= {"fact", "import", "approval", "document"}, console
    old = fleet.get(f"/v1/lineage/answers/{rid}", importer)  # codex-lineage's path: deprecated, the same graph
    assert old.json() == console["provenance"] and old.headers["Deprecation"] == "true", old.headers

    # another tenant's admin, unknown ids, no key
    for path in (f"/v1/lineage/answers/{rid}", f"/v1/lineage/documents/{document['id']}",
                 f"/v1/lineage/imports/{cs['id']}"):
        refused = fleet.get(path, stranger)
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found", refused.text
        assert fleet.get(path, None).status_code == 401
    for path in ("/v1/lineage/answers/never", "/v1/lineage/documents/doc-never", "/v1/lineage/imports/kcs-never"):
        assert fleet.get(path, importer).status_code == 404


def test_a_learned_fact_leads_to_the_answer_or_memory_ingest_it_was_learned_from(
        fleet: LineageFleet, infra: dict[str, str]) -> None:
    tag = uuid.uuid4().hex[:8]
    tenant = new_namespace("fl")
    [admin, stranger, operator] = new_keys(infra["postgres"], ("fl-learned", "admin", [tenant]),
                                           ("fl-learned-stranger", "admin", [f"{tenant}-other"]),
                                           ("fl-learned-operator", "operator", [f"{tenant}-ops"]))
    taught_by, learned_in, legacy = f"fl-src-{tag}", f"mem-{uuid.uuid4().hex}", f"mem-{uuid.uuid4().hex}"
    facts = {f"rel-a-{tag}": "Alpha USES Beta", f"rel-m-{tag}": "Gamma PART_OF Delta", f"rel-l-{tag}": "Eps USES Zeta"}
    ids = list(facts)
    # graph-ingest's `ingested` events as it publishes them: the relations written and where they were learned from
    origins = [IngestEvent(response_id=taught_by, tenant_id=tenant, deadline_at=deadline_in(60), question="q",
                           answer="a", source_expert="technical_support", source_model="expert-model"),
               IngestEvent(response_id=learned_in, tenant_id=tenant, deadline_at=deadline_in(60), question="q",
                           answer="a", source_expert="memory-api", submitted_by="principal-bob")]
    events = [audit_event(None, actor="graph-ingest", action="ingested", subject=o.response_id, tenant=tenant,
                          response_id=o.response_id, reason="1 of 1 triples written",
                          details={"relations": [fact], "triples": [], "learned_from": learned_from(o)})
              for o, fact in zip(origins, ids, strict=False)]
    events.append(audit_event(None, actor="graph-ingest", action="ingested", subject=legacy, tenant=tenant,
                              response_id=legacy, reason="recorded before learned_from",
                              details={"relations": [ids[2]], "triples": []}))
    fleet.publish_audit(events, service="graph-ingest")
    rid = f"fl-use-{tag}"
    common: dict[str, Any] = {"response_id": rid, "tenant_id": tenant, "deadline_at": deadline_in(60)}
    fleet.publish([(TaskResult(task_id="t1", kind="graph", category="technical", content="facts",
                               sources=[Source(kind="graph", ref=f, title=t) for f, t in facts.items()], **common),
                    "results")], "graph-rag")
    fleet.publish([(Answer(mode="moe-orchestrator", content="Alpha uses Beta.", **common), "answers")], "merger")

    graph = _graph(fleet, f"/v1/lineage/answers/{rid}", admin,
                   lambda g: len(_nodes(g, "memory_ingest")) == 2 and len(_nodes(g, "answer")) == 2)
    edges = _edges(graph)
    assert {(f"answer:{taught_by}", f"fact:{ids[0]}", "learned"), (f"memory:{learned_in}", f"fact:{ids[1]}", "learned"),
            (f"memory:{legacy}", f"fact:{ids[2]}", "learned")} <= edges, graph["edges"]
    by_id = {n["id"]: n for n in graph["nodes"]}
    source = by_id[f"answer:{taught_by}"]["data"]
    assert source["expert"] == "technical_support" and source["model"] == "expert-model" and source["learned_at"]
    memory = by_id[f"memory:{learned_in}"]
    assert memory["kind"] == "memory_ingest" and memory["data"]["submitted_by"] == "principal-bob", memory
    assert not _nodes(graph, "import")  # learned, not imported
    assert fleet.get(f"/v1/lineage/answers/{rid}", stranger).status_code == 404
    seen = fleet.get(f"/v1/lineage/answers/{rid}", operator)  # the operator reads every tenant's
    assert seen.status_code == 200 and {n["id"] for n in seen.json()["nodes"]} == set(by_id), seen.text


def test_a_held_then_released_fact_leads_to_its_quarantine_entry_approvals_and_the_answer_it_was_learned_from(
        fleet: LineageFleet, infra: dict[str, str], scripted_server: Scripted) -> None:
    tag = uuid.uuid4().hex[:8]
    tenant = new_namespace("fl")
    first, second = new_person_keys(infra["postgres"], ("fl-q-first", "admin", [tenant]),  # four eyes: people's
                                    ("fl-q-second", "admin", [tenant]))
    [stranger] = new_keys(infra["postgres"], ("fl-q-stranger", "admin", [f"{tenant}-other"]))
    cp = fleet.control_plane
    medical = (f"Zelvoprin {tag}", "TREATS", f"Blorp {tag}")
    title = " ".join(medical)
    reply = {"triples": [{"subject": medical[0], "relation": medical[1], "object": medical[2], "confidence": 0.9}]}
    scripted_server.script([{"model": "expert-model", "system_contains": EXTRACT, "contains": tag,
                             "reply": json.dumps(reply)}])
    # an answer the merger hands to graph-ingest: its medical triple is held for review (a protected domain)
    taught = f"fl-taught-{tag}"
    fleet.publish([(IngestEvent(response_id=taught, tenant_id=tenant, deadline_at=deadline_in(60),
                                question=f"What treats it? {tag}", answer="Some answer text.",
                                knowledge_type="medical", confidence="high", source_expert="medical_consult",
                                source_model="expert-model"), "ingest")], "merger")
    deadline, item = time.monotonic() + WAIT_S, None
    while item is None and time.monotonic() < deadline:
        listed = _call("GET", f"{cp}/graph/quarantine", first).json()["data"]
        item = next((i for i in listed if i["subject"] == medical[0]), None)
        time.sleep(0.5)
    assert item is not None and "protected domain medical" in item["reason"], item
    # four eyes: two principals release it; the second approval writes the relation
    one = _call("POST", f"{cp}/graph/quarantine/{item['id']}/approve", first, json={"note": "dosage checked"})
    assert one.status_code == 200 and one.json()["status"] == "pending", one.text
    two = _call("POST", f"{cp}/graph/quarantine/{item['id']}/approve", second, json={"note": "second look"})
    assert two.status_code == 200 and two.json()["status"] == "approved", two.text
    fact = two.json()["relation_id"]
    principals = [a["principal"] for a in two.json()["approvals"]]
    assert fact and len(set(principals)) == 2, two.text

    # a later answer whose graph task used the released fact, as graph-rag and the merger publish them
    rid = f"fl-later-{tag}"
    common: dict[str, Any] = {"response_id": rid, "tenant_id": tenant, "deadline_at": deadline_in(60)}
    fleet.publish([(TaskResult(task_id="t1", kind="graph", category="medical", content=title,
                               sources=[Source(kind="graph", ref=fact, title=title)], **common), "results")],
                  "graph-rag")
    fleet.publish([(Answer(mode="moe-orchestrator", content=f"Zelvoprin {tag} treats Blorp.", **common),
                    "answers")], "merger")

    entry = f"quarantine:{item['id']}"
    graph = _graph(fleet, f"/v1/lineage/answers/{rid}", first,
                   lambda g: len(_nodes(g, "approval")) == 2 and f"answer:{taught}" in {n["id"] for n in g["nodes"]})
    by_id = {n["id"]: n for n in graph["nodes"]}
    [run] = _nodes(graph, "run")
    held = by_id[entry]
    assert held["kind"] == "quarantine" and held["data"]["status"] == "released", held
    assert "protected domain medical" in held["data"]["reason"] and held["data"]["domains"] == ["medical"], held
    assert held["data"]["approvals_required"] == 2 and held["data"]["triple"] == title, held
    assert held["data"]["relation_id"] == fact and held["data"]["held_at"] <= held["data"]["released_at"], held
    approvals = {n["data"]["principal"]: n for n in _nodes(graph, "approval")}
    assert sorted(approvals) == sorted(principals), approvals
    assert {n["data"]["note"] for n in approvals.values()} == {"dosage checked", "second look"}, approvals
    assert all(n["data"]["key"].startswith("key:") and n["data"]["at"] for n in approvals.values()), approvals
    origin = by_id[f"answer:{taught}"]["data"]
    assert origin["expert"] == "medical_consult" and origin["model"] == "expert-model", origin
    assert {(f"answer:{taught}", entry, "held"), (entry, f"fact:{fact}", "released"),
            *((f"approval:{entry}:{p}", entry, "approved") for p in principals),
            (f"fact:{fact}", run["id"], "used_by"), (run["id"], f"answer:{rid}", "answered")} <= _edges(graph), (
        graph["edges"])
    assert not _nodes(graph, "import")  # released, not imported

    # downstream from the answer it was learned from: the entry and the fact released from it
    down = _graph(fleet, f"/v1/lineage/answers/{taught}", second, lambda g: entry in {n["id"] for n in g["nodes"]})
    assert {(f"answer:{taught}", entry, "held"), (entry, f"fact:{fact}", "released")} <= _edges(down), down["edges"]
    assert len(_nodes(down, "approval")) == 2, down

    # another tenant's admin
    for path in (f"/v1/lineage/answers/{rid}", f"/v1/lineage/answers/{taught}"):
        refused = fleet.get(path, stranger)
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found", refused.text


def test_a_document_chunk_graph_rag_quoted_leads_to_the_answer_and_back(
        fleet: LineageFleet, infra: dict[str, str]) -> None:
    tag = uuid.uuid4().hex[:8]
    tenant = new_namespace("fl")
    owner, stranger = new_keys(infra["postgres"], ("fl-quoted", "admin", [tenant]),
                               ("fl-quoted-stranger", "admin", [f"{tenant}-other"]))
    uploaded = _call("POST", f"{fleet.control_plane}/v1/memory/documents", owner,
                     json={"title": f"Runbook {tag}", "source": "runbook.md",
                           "text": f"# Runbook {tag}\n\nRestart the Zorblat Engine {tag} before noon."})
    assert uploaded.status_code == 201, uploaded.text
    document = uploaded.json()["id"]
    # an answer whose graph task quoted the document's chunk directly (no import, no fact), as graph-rag publishes it
    rid, chunk = f"fl-quote-{tag}", f"tenant-documents/{document}:0"
    common: dict[str, Any] = {"response_id": rid, "tenant_id": tenant, "deadline_at": deadline_in(60)}
    fleet.publish([(TaskResult(task_id="t1", kind="graph", category="technical", content="Restart it before noon.",
                               sources=[Source(kind="document", ref=chunk, title=f"Runbook {tag}",
                                               url=f"/v1/memory/documents/{document}")], **common), "results")],
                  "graph-rag")
    fleet.publish([(Answer(mode="moe-orchestrator", content="Restart it before noon.", **common), "answers")],
                  "merger")

    up = _graph(fleet, f"/v1/lineage/answers/{rid}", owner, lambda g: _nodes(g, "document"))
    [run] = _nodes(up, "run")
    [doc] = _nodes(up, "document")
    assert (doc["id"], doc["label"]) == (f"document:{document}", f"Runbook {tag}"), doc
    assert doc["data"] == {"document_id": document, "chunks": [chunk]}, doc
    assert {(doc["id"], run["id"], "quoted_by"), (run["id"], f"answer:{rid}", "answered")} <= _edges(up), up["edges"]
    assert not _nodes(up, "import") and not _nodes(up, "fact")  # quoted, not imported

    down = _graph(fleet, f"/v1/lineage/documents/{document}", owner, lambda g: _nodes(g, "answer"))
    assert down["root"] == f"document:{document}", down
    assert [n["id"] for n in _nodes(down, "answer")] == [f"answer:{rid}"], down
    assert {(f"document:{document}", run["id"], "quoted_by"), (run["id"], f"answer:{rid}", "answered")} <= (
        _edges(down)), down["edges"]

    # another tenant's admin: neither the answer nor the document
    for path in (f"/v1/lineage/answers/{rid}", f"/v1/lineage/documents/{document}"):
        refused = fleet.get(path, stranger)
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found", refused.text
