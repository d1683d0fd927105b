"""Tenant documents in a protected domain wait for review (a hospital's trial: one clinician's user key uploaded a
medical document that fed every answer in the tenant at once). On the real Chroma, OPA, Kafka, Redis and Postgres:
a document whose text or label is medical or legal is stored but held (pending_review), found neither by
POST /v1/memory/search nor by graph-rag's lookup for a question, until two different admin persons of the tenant
approve it (policy/opa/memory.rego); the uploader, a service account and a second key of the same person do not
count; a rejection deletes it; a document of another domain is searchable at once; every step is an audit event."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from moe_core.contracts import GraphTask, deadline_in
from tests.graph.conftest import GraphServices
from tests.support.keys import person_key

pytestmark = pytest.mark.infra
SEPSIS = ("# Sepsis bundle on ward 7\n\nA patient with a Zelvora score of 5 or more gets the first antibiotic dose "
          "within one hour; the ward pharmacist checks the dosage.")
QUESTION = "When does a patient with a high Zelvora score get the first antibiotic dose?"
CONSENT = "# Consent forms\n\nEvery consent form names the clause of the contract it was signed under."
ROTA = "# Shift rota\n\nNight shifts on ward 7 swap on Mondays; the rota hangs beside the nurses' station."


@pytest.fixture(scope="module", autouse=True)
def chroma() -> None:
    from fleetlib import api

    api.ensure_up(["chroma"])


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class Ward:
    """A tenant with a clinician (a user key, a service account), two admin persons (one with two keys) and an
    admin service account (an approval bot)."""

    def __init__(self, svc: GraphServices, name: str) -> None:
        self.svc, self.name, self.api = svc, name, svc.gateway

    async def make(self) -> Ward:
        store = self.svc.keystore
        self.clinician = (await store.create("clinician", "user", [self.name]))[1]
        self.ada_id, self.ada = await person_key(store, "Dr Ada", "admin", [self.name])
        self.ada_other = (await store.create("Dr Ada 2", "admin", [self.name], principal_id=self.ada_id))[1]
        self.ben_id, self.ben = await person_key(store, "Dr Ben", "admin", [self.name])
        self.bot = (await store.create("approval bot", "admin", [self.name]))[1]
        return self

    async def upload(self, key: str, **body: Any) -> dict[str, Any]:
        response = await self.api.post("/v1/memory/documents", headers=bearer(key), json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def decide(self, key: str, doc: dict[str, Any], verb: str, **body: Any) -> httpx.Response:
        return await self.api.post(f"/v1/memory/documents/{doc['id']}/{verb}", headers=bearer(key), json=body)

    async def search(self, query: str) -> set[str]:
        found = await self.api.post("/v1/memory/search", headers=bearer(self.clinician), json={"query": query})
        assert found.status_code == 200, found.text
        return {h["document_id"] for h in found.json()["data"]}

    async def listed(self, **params: str) -> dict[str, dict[str, Any]]:
        got = await self.api.get("/v1/memory/documents", headers=bearer(self.clinician), params=params)
        assert got.status_code == 200, got.text
        return {d["id"]: d for d in got.json()["data"]}

    async def answer_documents(self, question: str) -> set[str]:
        """The documents graph-rag's lookup gives a question of this tenant (on the real broker), as its context and
        the answer's sources."""
        task = GraphTask(response_id=uuid.uuid4().hex, tenant_id=self.name, deadline_at=deadline_in(60),
                         task_id="t1", question=question, metadata_filters={})
        await self.svc.publish(task, "tasks_graph")
        [result] = await self.svc.tap.wait(self.svc.bus.topics.results, lambda m: m["response_id"] == task.response_id)
        assert result["error"] is None, result
        found = {d["document_id"] for d in result["data"]["documents"]}
        cited = {s["url"].rsplit("/", 1)[-1] for s in result["sources"] if s["kind"] == "document"}
        assert cited == found, result  # what the judge is given is what the answer's sources name
        return found


def refused(response: httpx.Response, status: int, *codes: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert error["code"] in codes, error
    return str(error["code"])


@pytest.fixture
async def ward(graph_services: GraphServices) -> AsyncIterator[Ward]:
    made = await Ward(graph_services, f"ward-{uuid.uuid4().hex[:8]}").make()
    yield made
    for doc in (await made.listed()).values():  # leave nothing behind in the namespace's collections
        await made.api.delete(f"/v1/memory/documents/{doc['id']}", headers=bearer(made.ada))


async def test_a_medical_document_is_searched_only_after_two_admin_persons_approve_it(ward: Ward) -> None:
    # labelled "general" by the clinician: the server finds it medical in the text (a label never removes review)
    doc = await ward.upload(ward.clinician, text=SEPSIS, domain="general", source="ward7/sepsis.md")
    assert (doc["status"], doc["approvals_required"], doc["review_domains"], doc["approvals"]) == (
        "pending_review", 2, ["medical"], [])
    assert doc["uploaded_by"].startswith("sa-")
    assert doc["id"] not in await ward.search(QUESTION)
    assert doc["id"] not in await ward.answer_documents(QUESTION)
    assert (await ward.listed())[doc["id"]]["status"] == "pending_review"
    assert set(await ward.listed(status="pending_review")) == {doc["id"]}
    assert await ward.listed(status="searchable") == {}

    # the uploader, a user key and a service account (every one a reason: the policy names one), an admin service
    # account: refused, nothing counted
    refused(await ward.decide(ward.clinician, doc, "approve"), 403, "self_approval", "insufficient_role",
            "approver_not_a_person")
    refused(await ward.decide(ward.bot, doc, "approve"), 403, "approver_not_a_person")
    first = await ward.decide(ward.ada, doc, "approve", note="dose checked against the formulary")
    assert first.status_code == 200, first.text
    assert (first.json()["status"], [a["principal"] for a in first.json()["approvals"]]) == (
        "pending_review", [ward.ada_id])
    refused(await ward.decide(ward.ada_other, doc, "approve"), 403, "duplicate_approval")  # the same person
    assert doc["id"] not in await ward.search(QUESTION)
    assert doc["id"] not in await ward.answer_documents(QUESTION)

    second = await ward.decide(ward.ben, doc, "approve")
    assert second.status_code == 200, second.text
    released = second.json()
    assert released["status"] == "searchable" and released["sha256"] == doc["sha256"]
    assert [a["principal"] for a in released["approvals"]] == [ward.ada_id, ward.ben_id]
    assert released["approvals"][0]["note"] == "dose checked against the formulary"
    assert doc["id"] in await ward.search(QUESTION)
    assert doc["id"] in await ward.answer_documents(QUESTION)  # graph-rag's cached context was invalidated
    assert (await ward.listed())[doc["id"]]["status"] == "searchable"
    refused(await ward.decide(ward.ben, doc, "approve"), 409, "not_pending_review")

    svc = ward.svc
    events = await svc.tap.wait(svc.bus.topics.audit, lambda m: m["subject"] == doc["id"], count=14)
    actions = [m["action"] for m in events]
    assert {a: actions.count(a) for a in set(actions)} == {
        "memory_document_held": 1, "memory_document_review_refused": 4, "memory_document_approved": 2,
        "memory_document_released": 1, "policy_decision": 6}  # the upload's, and the five approvals the policy saw
    held = next(m for m in events if m["action"] == "memory_document_held")
    assert held["details"]["sha256"] == doc["sha256"] and held["details"]["approvals_required"] == 2
    refusals = [m["details"] for m in events if m["action"] == "memory_document_review_refused"]
    assert {r["code"] for r in refusals} >= {"approver_not_a_person", "duplicate_approval", "not_pending_review"}
    release = next(m for m in events if m["action"] == "memory_document_released")
    assert release["details"]["approvers"] == sorted([ward.ada_id, ward.ben_id])


async def test_a_person_uploading_with_one_key_does_not_approve_with_another(ward: Ward) -> None:
    doc = await ward.upload(ward.ada, text=CONSENT, domain="general")  # legal by its words (contract, clause)
    assert (doc["status"], doc["review_domains"], doc["uploaded_by"]) == ("pending_review", ["legal"], ward.ada_id)
    refused(await ward.decide(ward.ada_other, doc, "approve"), 403, "self_approval")
    refused(await ward.decide(ward.ada_other, doc, "reject"), 403, "self_approval")
    assert (await ward.listed())[doc["id"]]["approvals"] == []


async def test_a_rejected_document_is_deleted_and_never_searched(ward: Ward) -> None:
    doc = await ward.upload(ward.clinician, text=SEPSIS, domain="medical")
    refused(await ward.decide(ward.clinician, doc, "reject"), 403, "self_approval", "insufficient_role")
    refused(await ward.decide(ward.bot, doc, "approve"), 403, "approver_not_a_person")
    first = await ward.decide(ward.ada, doc, "approve")
    assert first.status_code == 200 and first.json()["status"] == "pending_review", first.text
    rejected = await ward.decide(ward.ben, doc, "reject", note="the dose contradicts the formulary")
    assert rejected.status_code == 200, rejected.text
    assert rejected.json() == {"object": "memory.document.rejected", "id": doc["id"], "rejected": True,
                               "deleted": True}
    gone = await ward.api.get(f"/v1/memory/documents/{doc['id']}", headers=bearer(ward.ada))
    refused(gone, 404, "not_found")
    refused(await ward.decide(ward.ben, doc, "approve"), 404, "not_found")  # nothing left to release
    assert doc["id"] not in await ward.listed()
    assert doc["id"] not in await ward.search(QUESTION)
    assert doc["id"] not in await ward.answer_documents(QUESTION)
    svc = ward.svc
    [event] = await svc.tap.wait(svc.bus.topics.audit, lambda m: m["subject"] == doc["id"]
                                 and m["action"] == "memory_document_rejected")
    assert event["reason"] == "the dose contradicts the formulary" and event["tenant_id"] == ward.name
    assert (event["details"]["sha256"], event["details"]["principal"], event["details"]["approvers"]) == (
        doc["sha256"], ward.ben_id, [ward.ada_id])


async def test_a_document_of_an_unprotected_domain_is_searchable_at_once(ward: Ward) -> None:
    rota = await ward.upload(ward.clinician, text=ROTA, domain="operations")
    assert (rota["status"], rota["approvals_required"], rota["approvals"]) == ("searchable", 0, [])
    assert rota["id"] in await ward.search("When do night shifts swap?")
    refused(await ward.decide(ward.ada, rota, "approve"), 409, "not_pending_review")
    labelled = await ward.upload(ward.clinician, text=ROTA.replace("Mondays", "Tuesdays"), domain="legal")
    assert (labelled["status"], labelled["review_domains"]) == ("pending_review", ["legal"])  # the label adds it
    svc = ward.svc
    [added] = await svc.tap.wait(svc.bus.topics.audit, lambda m: m["subject"] == rota["id"]
                                 and m["action"] == "memory_document_added")
    assert added["details"]["sha256"] == rota["sha256"]
