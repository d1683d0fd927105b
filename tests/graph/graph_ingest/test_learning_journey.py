"""Learning on the real broker and the real Neo4j: an answer's triples appear in the graph (a medical one once an
admin approved it: learned triples in protected domains wait for review,
tests/graph/graph_ingest/test_learned_policy.py), a later related question receives them as context, feedback
verifies or flags, conflicts with curated knowledge are refused, a redelivered answer changes nothing."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from moe_core.contracts import Feedback, GraphTask, IngestEvent, deadline_in
from moe_core.knowledge.graph import GraphDB
from tests.conftest import Scripted
from tests.graph.conftest import GraphServices
from tests.graph.helpers import relations, titles

pytestmark = pytest.mark.infra
EXTRACT = "extract at most"  # a phrase of graph-ingest's system prompt


def extraction_rule(marker: str, triples: list[tuple[str, str, str, float]]) -> dict[str, Any]:
    reply = {"triples": [{"subject": s, "relation": r, "object": o, "confidence": c} for s, r, o, c in triples]}
    return {"model": "expert-model", "system_contains": EXTRACT, "contains": marker, "reply": json.dumps(reply)}


def ingest_event(tenant: str, marker: str, **kw: Any) -> IngestEvent:
    fields = {"response_id": f"r-{uuid.uuid4().hex[:12]}", "tenant_id": tenant, "deadline_at": deadline_in(60),
              "question": f"What do you know about it? {marker}", "answer": "Some answer text.",
              "knowledge_type": "medical", "confidence": "high", "source_expert": "medical_consult",
              "source_model": "expert-model", **kw}
    return IngestEvent.model_validate(fields)


async def learn(svc: GraphServices, event: IngestEvent) -> dict[str, Any]:
    await svc.publish(event, "ingest")
    [done] = await svc.tap.wait(svc.bus.topics.audit,
                                lambda m: m["response_id"] == event.response_id and m["action"] == "ingested")
    return done


async def approve_held(svc: GraphServices, tenant: str, response_id: str, count: int) -> list[dict[str, Any]]:
    """Two admins (two principals: a protected domain needs four eyes) approve the `count` triples of an answer the
    write policy held for review."""
    held = await svc.tap.wait(svc.bus.topics.audit, lambda m: m["response_id"] == response_id
                              and m["action"] == "quarantined" and m["details"].get("policy") == "held", count=count)
    approved = [await svc.approve(h["subject"], tenant) for h in held]
    assert [(a.status_code, a.json().get("status")) for a in approved] == [(200, "approved")] * count, [
        a.text for a in approved]
    return [a.json() for a in approved]


async def ask(svc: GraphServices, tenant: str, question: str) -> dict[str, Any]:
    task = GraphTask(response_id=f"q-{uuid.uuid4().hex[:12]}", tenant_id=tenant, deadline_at=deadline_in(60),
                     task_id="t2", question=question)
    await svc.publish(task, "tasks_graph")
    [result] = await svc.tap.wait(svc.bus.topics.results, lambda m: m["response_id"] == task.response_id)
    return result


async def test_the_judges_insight_becomes_a_synthesis_node_about_its_entities(
        graph_services: GraphServices, graph_db: GraphDB, scripted: Scripted, tenant: str) -> None:
    marker = uuid.uuid4().hex[:8]
    scripted.script([extraction_rule(marker, [("Zelmorin", "PART_OF", "Sinus Kit", 0.9)])])  # no protected domain
    insight = {"summary": "Zelmorin is part of the sinus kit but must not meet warfarin.", "insight_type": "causal",
               "entities": ["Zelmorin", "Warfarin", "Unknownium"]}
    event = ingest_event(tenant, marker, synthesis=insight, synthesis_insight=insight["summary"])
    await learn(graph_services, event)
    [node] = await graph_db.read(
        "MATCH (s:Synthesis {tenant: $t}) OPTIONAL MATCH (s)-[:ABOUT]->(e) RETURN s.text AS text, "
        "s.insight_type AS type, s.entities AS named, s.response_id AS rid, collect(e.name) AS about", t=tenant)
    assert (node["text"], node["type"], node["named"], node["rid"]) == (
        insight["summary"], "causal", insight["entities"], event.response_id)
    # the answer's own entities, and the shared Warfarin by name; a name the graph does not know links nothing
    assert sorted(node["about"]) == ["Sinus Kit", "Warfarin", "Zelmorin"]


async def test_an_answers_triples_appear_and_a_later_question_receives_them(
        graph_services: GraphServices, graph_db: GraphDB, scripted: Scripted, tenant: str) -> None:
    marker = uuid.uuid4().hex[:8]
    scripted.script([extraction_rule(marker, [
        ("Quellmycin", "TREATS", "Sinus Blockage", 0.9), ("Quellmycin", "INTERACTS_WITH", "Warfarin", 0.8),
        ("Quellmycin", "CURES", "Everything", 1.0)])])  # the last is outside the vocabulary: dropped
    event = ingest_event(tenant, marker, synthesis_insight="Quellmycin is the first choice for sinus blockage.")
    done = await learn(graph_services, event)
    assert done["actor"] == "graph-ingest" and done["details"]["relations"] == []  # medical: held for review
    assert await relations(graph_db, tenant) == []
    approved = await approve_held(graph_services, tenant, event.response_id, 2)
    assert {a["response_id"] for a in approved} == {event.response_id}
    rows = await relations(graph_db, tenant)
    assert titles(rows) == ["Quellmycin INTERACTS_WITH Warfarin", "Quellmycin TREATS Sinus Blockage"]
    assert {(r["source"], r["domain"], r["version"]) for r in rows} == {("extracted", "medical", 1)}
    assert {r["response_id"] for r in rows} == {f"quarantine:{a['id']}" for a in approved}
    assert [r["object_tenant"] for r in rows] == ["__shared__", tenant]  # Warfarin is the shared entity

    result = await ask(graph_services, tenant, "Is quellmycin safe with a blood thinner for my sinus blockage?")
    assert (result["kind"], result["category"], result["error"]) == ("graph", "knowledge_graph", None)
    assert "- Quellmycin TREATS Sinus Blockage [0.54]" in result["content"]
    assert "- Quellmycin INTERACTS_WITH Warfarin" in result["content"]
    by_ref = {s["ref"]: s for s in result["sources"]}
    for row in rows:
        assert by_ref[row["id"]] == {"kind": "graph", "ref": row["id"], "url": None,
                                     "title": f"{row['subject']} {row['type']} {row['object']}"}
    assert [e["name"] for e in result["data"]["entities"]] == ["Quellmycin", "Anticoagulant", "Sinus Blockage"]

    stranger = await ask(graph_services, f"{tenant}-x", "Is quellmycin safe for my sinus blockage?")
    assert "Quellmycin" not in stranger["content"] and stranger["data"]["entities"] == []


async def test_a_redelivered_answer_writes_nothing_new_and_calls_no_model(
        graph_services: GraphServices, graph_db: GraphDB, scripted: Scripted, tenant: str) -> None:
    marker = uuid.uuid4().hex[:8]
    scripted.script([extraction_rule(marker, [("Drebomab", "PART_OF", "Zorgon Kit", 0.9)])])
    event = ingest_event(tenant, marker)
    await learn(graph_services, event)
    await graph_services.publish(event, "ingest")  # at-least-once: the same answer again
    await graph_services.tap.wait(graph_services.bus.topics.audit, lambda m: m["response_id"] == event.response_id
                                  and m["action"] == "ingested", count=2)
    [row] = await relations(graph_db, tenant)
    assert (row["version"], row["assertions"]) == (1, 1)
    assert len([c for c in scripted.calls() if marker in str(c["messages"])]) == 1


async def test_feedback_verifies_and_flags_and_flagged_facts_leave_the_context(
        graph_services: GraphServices, graph_db: GraphDB, scripted: Scripted, tenant: str) -> None:
    marker = uuid.uuid4().hex[:8]
    scripted.script([extraction_rule(marker, [("Pexomil", "TREATS", "Cough", 0.9),
                                              ("Pexomil", "CAUSES", "Nausea", 0.6)])])
    event = ingest_event(tenant, marker)
    await learn(graph_services, event)
    await approve_held(graph_services, tenant, event.response_id, 2)  # medical: written once an admin approved
    ids = {r["type"]: r["id"] for r in await relations(graph_db, tenant)}
    for rating, ref, action in [(5, ids["TREATS"], "relations_verified"), (1, ids["CAUSES"], "relations_flagged")]:
        feedback = Feedback(response_id=f"f-{uuid.uuid4().hex[:10]}", tenant_id=tenant, deadline_at=deadline_in(60),
                            rating=rating, graph_refs=[ref, "r-not-a-relation"])
        await graph_services.publish(feedback, "feedback")
        rid = feedback.response_id
        [audit] = await graph_services.tap.wait(graph_services.bus.topics.audit,
                                                lambda m: m["response_id"] == rid)  # noqa: B023 (awaited here)
        assert (audit["action"], audit["details"]["relations"]) == (action, [ref])
    rows = {r["type"]: r for r in await relations(graph_db, tenant)}
    assert (rows["TREATS"]["verified"], rows["TREATS"]["flagged"]) == (True, False)
    assert (rows["CAUSES"]["verified"], rows["CAUSES"]["flagged"]) == (False, True)
    assert rows["TREATS"]["trust"] == pytest.approx(0.9 * 0.6 * 1.5)  # the original's weight and bonus
    result = await ask(graph_services, tenant, "Tell me about pexomil")
    assert "Pexomil TREATS Cough" in result["content"] and "Nausea" not in result["content"]


async def test_a_contradiction_of_the_curated_ontology_is_refused_with_an_audit_event(
        graph_services: GraphServices, graph_db: GraphDB, scripted: Scripted, tenant: str) -> None:
    marker = uuid.uuid4().hex[:8]
    scripted.script([extraction_rule(marker, [("Advil", "TREATS", "stomach ulcer", 0.9),  # ontology: CAUSES
                                              ("Ibuprofen", "TREATS", "Toothache", 0.9)])])
    event = ingest_event(tenant, marker)
    await learn(graph_services, event)
    [refused] = graph_services.tap.seen(graph_services.bus.topics.audit, lambda m: m["response_id"]
                                        == event.response_id and m["action"] == "conflict_rejected")
    assert refused["subject"] == "Advil TREATS stomach ulcer"
    assert [(c["type"], c["source"]) for c in refused["details"]["conflicts"]] == [("CAUSES", "ontology")]
    assert await relations(graph_db, tenant) == []  # the other one is medical: it waits for review
    [held] = graph_services.tap.seen(graph_services.bus.topics.audit, lambda m: m["response_id"]
                                     == event.response_id and m["action"] == "quarantined")
    assert held["details"]["triple"]["subject"] == "Ibuprofen" and held["details"]["policy"] == "held"
