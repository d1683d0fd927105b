"""Who raised a gap, and what a reviewer's rejection does to it, on the real gateway, graph-rag, gap-healer, control
plane, broker, Neo4j and Open Policy Agent. Found in a hospital's trial: the person whose question raised an unknown
medical term could approve the classification held for review from it (one of the four eyes was the instigator's,
OntologyGap carried no asker), and a held classification reviewers rejected left the gap `quarantined` and the
term unknown for ever."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from moe_core.contracts import ChatRequest, Plan, PlannedTask, deadline_in
from moe_core.knowledge.graph import GraphDB
from moe_core.knowledge.graph.gaps import gap_id
from planner.app import task_message
from tests.conftest import Scripted
from tests.graph.conftest import GraphServices
from tests.graph.gap_healer.test_gap_review import decided, gap_of
from tests.graph.gap_healer.test_gaps_and_lint import classify_rule
from tests.graph.graph_ingest.test_quarantine_and_api import assert_openai_error, bearer
from tests.graph.helpers import relations, titles
from tests.support.keys import person_key
from tests.support.topic_reader import TopicReader

pytestmark = pytest.mark.infra


async def pending_items(svc: GraphServices, tenant: str) -> list[dict[str, Any]]:
    listed = await svc.gateway.get("/graph/quarantine", headers=bearer(await svc.admin_key_for(tenant)))
    return [i for i in listed.json()["data"] if i["tenant"] == tenant]


async def gaps_listed(svc: GraphServices, tenant: str, state: str) -> list[dict[str, Any]]:
    listed = await svc.gateway.get("/v1/admin/ontology-gaps", params={"tenant": tenant, "state": state},
                                   headers=bearer(await svc.admin_key_for(tenant)))
    assert listed.status_code == 200, listed.text
    data: list[dict[str, Any]] = listed.json()["data"]
    return data


async def listed_soon(svc: GraphServices, tenant: str, state: str) -> list[dict[str, Any]]:
    """gaps_listed once it lists a gap (the gap-healer records the state just after its audit event)."""
    for _ in range(50):
        if found := await gaps_listed(svc, tenant, state):
            return found
        await asyncio.sleep(0.1)
    return []


def offered_classes(scripted: Scripted, term: str) -> list[list[str]]:
    """The classes each classification call of `term` offered the model (its system prompt's list)."""
    out = []
    for call in scripted.calls():
        if any(f"Term: {term}" in str(m.get("content")) for m in call["messages"]):
            system = str(call["messages"][0]["content"])
            out.append(system.split("Classes: ", 1)[1].split(". Answer", 1)[0].split(", "))
    return out


async def test_the_asker_may_not_approve_the_classification_their_question_led_to(
        graph_services: GraphServices, graph_db: GraphDB, scripted: Scripted, tenant: str,
        infra: dict[str, str]) -> None:
    svc, api, m = graph_services, graph_services.gateway, uuid.uuid4().hex[:6]
    term = f"kardolin{m}"  # as graph-rag reports it
    question = f"What dose of {term} for this patient?"
    asker, secret = await person_key(svc.keystore, "asking clinician", "admin", [tenant])
    _, second_secret = await svc.keystore.create("the clinician's other key", "admin", [tenant], principal_id=asker)

    # the edge: the verified key's principal (its id, not the key) is on the request
    async with TopicReader(infra["kafka"], svc.bus.topics.requests) as requests:
        await api.post("/v1/chat/completions", headers={**bearer(secret), "X-Request-Timeout": "1"},
                       json={"model": "moe-orchestrator", "messages": [{"role": "user", "content": question}]})
        [sent] = await requests.wait(svc.bus.topics.requests, lambda r: r["tenant_id"] == tenant)
    assert sent["asked_by"] == asker and secret not in json.dumps(sent)
    # as the planner would receive it (under a fresh id and deadline: this one was abandoned, no planner runs here)
    request = ChatRequest.model_validate(sent).model_copy(update={"response_id": f"r-{uuid.uuid4().hex[:12]}",
                                                                  "deadline_at": deadline_in(60)})
    # the planner's graph task carries it (its other tasks do not: ExpertTask has no such field)
    plan = Plan(**request.child_fields(), mode=request.mode, question=question,
                tasks=[PlannedTask(task_id="t1", kind="graph", category="knowledge", instruction=question)])
    task = task_message(request, plan, plan.tasks[0], [])
    assert task.model_dump()["asked_by"] == asker

    # graph-rag may name more new words of the question: the gap-healer then asks for all of them in one call
    # (gap_healer.core.batch_messages), and this answer, naming the term, counts for it alone
    scripted.script([{**classify_rule(term, term, "NSAID", confidence=0.8), "system_contains": "You classify",
                      "contains": term}])
    await svc.publish(task, "tasks_graph")  # graph-rag reports the unknown term, the gap-healer holds its class
    [gap] = await svc.tap.wait(svc.bus.topics.ontology_gaps, lambda g: g["tenant_id"] == tenant
                               and g["term"].lower() == term.lower())
    assert gap["asked_by"] == asker
    [held] = await svc.tap.wait(svc.bus.topics.audit, lambda e: e["response_id"] == request.response_id
                                and e["action"] == "gap_quarantined")
    assert held["details"]["submitted_by"] == asker
    [item] = await pending_items(svc, tenant)
    assert (item["id"], item["submitted_by"], item["approvals_required"]) == (held["subject"], asker, 2)

    for key in (secret, second_secret):  # the asker, with any of their keys, is not one of the four eyes
        assert_openai_error(await api.post(f"/graph/quarantine/{item['id']}/approve", headers=bearer(key)),
                            403, "own_submission")
    assert await relations(graph_db, tenant) == []
    approved = await svc.approve(item["id"], tenant)  # two other admins, people: written
    assert approved.status_code == 200 and approved.json()["status"] == "approved", approved.text
    assert {a["principal"] for a in approved.json()["approvals"]}.isdisjoint({asker})
    assert titles(await relations(graph_db, tenant)) == [f"{term} IS_A NSAID"]


async def test_a_rejected_classification_leaves_the_gap_rejected_and_the_term_classified_again_later(
        graph_services: GraphServices, graph_db: GraphDB, scripted: Scripted, tenant: str) -> None:
    svc, api = graph_services, graph_services.gateway
    healer = svc.apps["gap-healer"].state.gap_healer
    term = f"Velquor{uuid.uuid4().hex[:6]}"
    scripted.script([classify_rule(term, term, "NSAID", confidence=0.8)])
    held, _ = await decided(svc, gap_of(tenant, term, f"What dose of {term}?"), "gap_quarantined")

    reviewer = await svc.admin_key_for(tenant)
    rejected = await api.post(f"/graph/quarantine/{held['subject']}/reject", headers=bearer(reviewer),
                              json={"note": "not an NSAID"})
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected", rejected.text
    principal = rejected.json()["decided_by"]  # key:<id>; the reviewer's principal is on the gap
    [effect] = await svc.tap.wait(svc.bus.topics.audit, lambda e: e["tenant_id"] == tenant
                                  and e["action"] == "gap_review_rejected")
    assert (effect["actor"], effect["subject"]) == (principal, gap_id(tenant, term))
    assert (effect["details"]["quarantine_id"], effect["details"]["rejected_class"], effect["details"]["note"]) == (
        held["subject"], "NSAID", "not an NSAID")
    assert (effect["details"]["state"], effect["details"]["review_rejections"]) == ("rejected", 1)

    assert await gaps_listed(svc, tenant, "quarantined") == []  # not stuck: listed as rejected, by whom and why
    [gap] = await gaps_listed(svc, tenant, "rejected")
    assert gap["rejected_by"] == effect["details"]["principal"] == gap["decided_by"]
    assert gap["rejected_by"] and not gap["rejected_by"].startswith("key:")  # the principal, not the key
    assert (gap["quarantine_id"], gap["review_note"], gap["rejected_classes"]) == (held["subject"], "not an NSAID",
                                                                                   ["NSAID"])
    assert "reviewers rejected" in gap["reason"] and "not an NSAID" in gap["reason"]

    # a question soon after: not classified again (the model is not asked, no item for the reviewers)
    scripted.script([classify_rule(term, term, "Antibiotic", confidence=0.8)])
    assert await healer.heal(gap_of(tenant, term, f"and {term}?")) == "cooling_down"
    assert offered_classes(scripted, term) == [] and await pending_items(svc, tenant) == []

    settings = healer.settings
    wait, limit = settings.gap_review_retry_after_s, settings.gap_max_review_rejections
    settings.gap_review_retry_after_s, settings.gap_max_review_rejections = 0.0, 2
    try:  # after the cool-down: a new classification, which may not name the rejected class, held again
        again, _ = await decided(svc, gap_of(tenant, term, f"Is {term} an antibiotic?"), "gap_quarantined")
        assert again["details"]["triple"]["object"] == "Antibiotic" and again["subject"] != held["subject"]
        [offered] = offered_classes(scripted, term)
        assert "NSAID" not in offered and "Antibiotic" in offered
        [state] = await listed_soon(svc, tenant, "quarantined")
        assert (state["quarantine_id"], state["review_rejections"]) == (again["subject"], 1)

        second = await api.post(f"/graph/quarantine/{again['subject']}/reject", headers=bearer(reviewer))
        assert second.status_code == 200, second.text
        [gap] = await gaps_listed(svc, tenant, "rejected")
        assert (gap["review_rejections"], gap["rejected_classes"]) == (2, ["NSAID", "Antibiotic"])
        # the limit (here 2): the term is no longer classified by itself
        assert await healer.heal(gap_of(tenant, term, f"{term} once more")) == "review_limit"
        assert len(offered_classes(scripted, term)) == 1 and await pending_items(svc, tenant) == []
    finally:
        settings.gap_review_retry_after_s, settings.gap_max_review_rejections = wait, limit
    assert await relations(graph_db, tenant) == []


async def test_an_expired_classification_is_held_again_as_the_first_askers(
        graph_services: GraphServices, graph_db: GraphDB, scripted: Scripted, tenant: str) -> None:
    svc = graph_services
    term = f"Norvantil{uuid.uuid4().hex[:6]}"
    scripted.script([classify_rule(term, term, "NSAID", confidence=0.8)])
    first = gap_of(tenant, term, f"Could {term} be given with warfarin?").model_copy(update={"asked_by": "p-first"})
    held, _ = await decided(svc, first, "gap_quarantined")
    assert held["details"]["submitted_by"] == "p-first"
    await listed_soon(svc, tenant, "quarantined")
    await graph_db.write("MATCH (q:Quarantine {id: $id}) SET q.expires_at = $past", id=held["subject"], past=1.0)

    # another person asks: the item expired unreviewed, the gap is reopened and the remembered classification held
    # anew, submitted by the first asker (it was made from their question), not by the later one
    later = gap_of(tenant, term, f"dose of {term}?").model_copy(update={"asked_by": "p-later"})
    again, _ = await decided(svc, later, "gap_quarantined")
    [reopened] = svc.tap.seen(svc.bus.topics.audit, lambda e: e["response_id"] == later.response_id
                              and e["action"] == "gap_reopened")
    assert (reopened["details"]["quarantine_id"], reopened["details"]["status"]) == (held["subject"], "expired")
    assert again["subject"] != held["subject"] and again["details"]["submitted_by"] == "p-first"
    assert len(offered_classes(scripted, term)) == 1  # remembered: the model was asked once
    [item] = await pending_items(svc, tenant)
    assert (item["id"], item["submitted_by"]) == (again["subject"], "p-first")
    [gap] = await listed_soon(svc, tenant, "quarantined")
    assert (gap["quarantine_id"], gap["asked_by"]) == (again["subject"], "p-first")
