"""Tenant documents ("scoped memory") on the real Chroma, Kafka, Redis, Postgres and Neo4j: uploaded through
the gateway's API (Markdown as JSON text and as a file, PDF as a file), listed, read, searched and deleted
per tenant; graph-rag's filtered lookup (on by default) on the real broker returns only the asking tenant's
documents of the plan's domain, each with its source; bad filters and bad documents (a PDF bomb among them)
are 400/413 in the OpenAI envelope. A document in a protected domain is searched once two admin persons of the
tenant approved it (its review: tests/graph/control_plane/test_memory_review.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from moe_core.contracts import GraphTask, deadline_in
from tests.graph.conftest import GraphServices
from tests.support.pdf import expanding_pdf, text_pdf

pytestmark = pytest.mark.infra
WARFARIN_A = ("# Warfarin policy\n\nElderly patients on warfarin get an INR check every two weeks on ward 7. "
              "Dose changes need the ward pharmacist's sign-off.")
CONTRACTS_A = "# Vendor contracts\n\nEvery vendor contract needs a data processing agreement (GDPR article 28)."
WARFARIN_B = "# Warfarin notes\n\nAt clinic B warfarin doses are set by the cardiologist alone, INR checked monthly."
QUESTION = "How often should INR be checked for elderly warfarin patients?"


@pytest.fixture(scope="module", autouse=True)
def chroma() -> None:
    from fleetlib import api

    api.ensure_up(["chroma"])


class Tenant:
    def __init__(self, name: str, key: str, gateway: httpx.AsyncClient) -> None:
        self.name, self.key, self.gateway = name, key, gateway
        self.headers = {"Authorization": f"Bearer {key}"}

    async def upload(self, expect: int = 201, **body: Any) -> dict[str, Any]:
        response = await self.gateway.post("/v1/memory/documents", headers=self.headers, json=body)
        assert response.status_code == expect, response.text
        return dict(response.json())

    async def upload_file(self, name: str, data: bytes, content_type: str, expect: int = 201,
                          **fields: str) -> dict[str, Any]:
        response = await self.gateway.post("/v1/memory/documents", headers=self.headers, data=fields,
                                           files={"file": (name, data, content_type)})
        assert response.status_code == expect, response.text
        return dict(response.json())

    async def call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> dict[str, Any]:
        response = await self.gateway.request(method, path, headers=self.headers, **kwargs)
        assert response.status_code == expect, response.text
        return dict(response.json())


@pytest.fixture
async def tenants(graph_services: GraphServices) -> AsyncIterator[tuple[Tenant, Tenant]]:
    made = []
    for label in ("a", "b"):
        name = f"mem-{label}-{uuid.uuid4().hex[:8]}"
        made.append(Tenant(name, await graph_services.user_key_for(name), graph_services.gateway))
    yield made[0], made[1]
    for tenant in made:  # leave nothing behind in the namespace's collection
        listed = await tenant.call("GET", "/v1/memory/documents")
        for doc in listed["data"]:
            await tenant.call("DELETE", f"/v1/memory/documents/{doc['id']}")


async def release(svc: GraphServices, tenant: Tenant, doc: dict[str, Any]) -> dict[str, Any]:
    """A document held for review (a protected domain: policy/opa/memory.rego), approved by two admin persons."""
    assert doc["status"] == "pending_review", doc
    for key in (await svc.admin_key_for(tenant.name), await svc.second_approver_for(tenant.name)):
        answer = await svc.gateway.post(f"/v1/memory/documents/{doc['id']}/approve",
                                        headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "searchable", answer.text
    return dict(answer.json())


async def graph_context(svc: GraphServices, tenant: str, filters: dict[str, Any]) -> dict[str, Any]:
    """graph-rag's answer to a graph task on the real broker (its document lookup is on by default)."""
    task = GraphTask(response_id=uuid.uuid4().hex, tenant_id=tenant, deadline_at=deadline_in(60), task_id="t9",
                     question=QUESTION, metadata_filters=filters)
    await svc.publish(task, "tasks_graph")
    [result] = await svc.tap.wait(svc.bus.topics.results, lambda m: m["response_id"] == task.response_id)
    return result


async def test_a_filtered_lookup_returns_only_the_tenants_documents_of_that_domain(
        graph_services: GraphServices, tenants: tuple[Tenant, Tenant]) -> None:
    a, b = tenants
    empty = await graph_context(graph_services, a.name, {"domain": "medical"})  # graph-rag: this scope has none
    assert empty["data"]["documents"] == [] and empty["error"] is None
    policy = await a.upload(text=WARFARIN_A, domain="medical", source="ward7/warfarin.md")
    contracts = await a.upload(text=CONTRACTS_A, domain="legal", source="legal/contracts.md")
    other = await b.upload(text=WARFARIN_B, domain="medical", source="clinic-b/warfarin.md")
    assert (policy["tenant"], policy["domain"], policy["title"], policy["chunks"]) == (
        a.name, "medical", "Warfarin policy", 1)
    for tenant, doc in ((a, policy), (a, contracts), (b, other)):  # medical and legal: held until approved
        await release(graph_services, tenant, doc)

    scoped = await graph_context(graph_services, a.name, {"domain": "medical"})  # found once released
    documents = scoped["data"]["documents"]
    assert {d["document_id"] for d in documents} == {policy["id"]}  # not B's, not A's legal one
    assert "[source: Warfarin policy (ward7/warfarin.md)] # Warfarin policy Elderly patients" in scoped["content"]
    [source] = [s for s in scoped["sources"] if s["kind"] == "document"]
    assert source == {"kind": "document", "ref": documents[0]["ref"], "title": "Warfarin policy (ward7/warfarin.md)",
                      "url": f"/v1/memory/documents/{policy['id']}"}

    for_b = await graph_context(graph_services, b.name, {"domain": "medical"})
    assert {d["document_id"] for d in for_b["data"]["documents"]} == {other["id"]}
    legal = await graph_context(graph_services, a.name, {"domain": "legal"})
    assert {d["document_id"] for d in legal["data"]["documents"]} <= {contracts["id"]}  # never the medical one
    unscoped = await graph_context(graph_services, a.name, {})
    assert policy["id"] in {d["document_id"] for d in unscoped["data"]["documents"]}
    assert other["id"] not in {d["document_id"] for d in unscoped["data"]["documents"]}

    await a.call("DELETE", f"/v1/memory/documents/{policy['id']}")  # the cached context is stale now
    again = await graph_context(graph_services, a.name, {"domain": "medical"})
    assert again["data"]["cached"] is False and again["data"]["documents"] == []

    bad = await graph_context(graph_services, a.name, {"department": "cardiology"})
    assert bad["error"].startswith("invalid metadata_filters: unknown filter field 'department'")
    assert bad["content"] == "" and not bad["sources"]  # no context rather than an unscoped one


async def test_markdown_and_pdf_uploads_are_retrievable_with_their_source(
        graph_services: GraphServices, tenants: tuple[Tenant, Tenant]) -> None:
    a, b = tenants
    handbook = ("# Night shift handbook\n\n## Fire alarms\n\nOn a fire alarm the night nurse closes every ward "
                "door and reports to the switchboard on extension 2222.\n\n## Keys\n\nThe drug cupboard key "
                "stays with the nurse in charge.")
    md = await a.upload_file("night-shift.md", handbook.encode(), "text/markdown", domain="operations",
                             document_set="handbooks", date="2024-03-01")
    pdf = await a.upload_file("evacuation.pdf", text_pdf([
        "Evacuation plan (2019 edition).", "Patients on the ground floor leave through the garden exit.",
        "Bedridden patients are moved by the evacuation sledges stored under each bed."]),
        "application/pdf", domain="operations", document_set="archive", date="2019-06-30")
    assert (md["media_type"], md["source"], md["document_set"], md["date"]) == (
        "text/markdown", "night-shift.md", "handbooks", "2024-03-01")
    assert (pdf["media_type"], pdf["source"], pdf["title"], pdf["date"]) == (
        "application/pdf", "evacuation.pdf", "evacuation.pdf", "2019-06-30")
    assert md["review_domains"] == pdf["review_domains"] == ["medical"]  # their texts: "drug", "patients"
    for doc in (md, pdf):
        await release(graph_services, a, doc)

    async def search(tenant: Tenant, query: str, filters: dict[str, Any]) -> list[dict[str, Any]]:
        found = await tenant.call("POST", "/v1/memory/search", json={"query": query, "filters": filters})
        return list(found["data"])

    fire = await search(a, "What does the night nurse do on a fire alarm?", {"document_set": "handbooks"})
    assert fire and fire[0]["document_id"] == md["id"] and fire[0]["source"] == "night-shift.md"
    assert "extension 2222" in fire[0]["text"] and fire[0]["text"].startswith("# Night shift handbook")
    sledges = await search(a, "How are bedridden patients evacuated?", {"domain": "operations"})
    assert sledges[0]["document_id"] == pdf["id"] and "evacuation sledges" in sledges[0]["text"]
    assert sledges[0]["source"] == "evacuation.pdf"
    in_2019 = await search(a, "How are bedridden patients evacuated?",
                           {"time_range": {"from": "2019-01-01", "to": "2019-12-31"}})
    assert {h["document_id"] for h in in_2019} == {pdf["id"]}
    mentions = await search(a, "evacuation and fire", {"entity": "switchboard"})
    assert {h["document_id"] for h in mentions} == {md["id"]}
    assert await search(b, "How are bedridden patients evacuated?", {}) == []  # another tenant sees nothing

    listed = await a.call("GET", "/v1/memory/documents", params={"domain": "operations"})
    assert [d["id"] for d in listed["data"]] == [pdf["id"], md["id"]] and listed["total"] == 2  # newest first
    archive = await a.call("GET", "/v1/memory/documents", params={"document_set": "archive"})
    assert [d["id"] for d in archive["data"]] == [pdf["id"]]
    assert (await b.call("GET", "/v1/memory/documents"))["data"] == []
    assert (await a.call("GET", f"/v1/memory/documents/{pdf['id']}"))["chunks"] == pdf["chunks"]

    for method in ("GET", "DELETE"):  # B cannot read or delete A's document
        refused = await b.call(method, f"/v1/memory/documents/{pdf['id']}", expect=404)
        assert refused["error"]["code"] == "not_found"
    deleted = await a.call("DELETE", f"/v1/memory/documents/{pdf['id']}")
    assert deleted == {"object": "memory.document.deleted", "id": pdf["id"], "deleted": True}
    assert await search(a, "How are bedridden patients evacuated?", {"document_set": "archive"}) == []
    await a.call("DELETE", f"/v1/memory/documents/{pdf['id']}", expect=404)
    audit = await graph_services.tap.wait(graph_services.bus.topics.audit,
                                          lambda m: m["subject"] == pdf["id"], count=9)
    # the policy's decisions (held at upload, two approvals, the deletion by its uploader or a tenant admin:
    # policy/opa/memory.rego) are on the record too
    assert sorted(m["action"] for m in audit) == [
        "memory_document_approved", "memory_document_approved", "memory_document_deleted", "memory_document_held",
        "memory_document_released", *["policy_decision"] * 4]
    assert {m["tenant_id"] for m in audit} == {a.name}


async def test_bad_filters_and_bad_documents_are_refused_with_the_reason(
        graph_services: GraphServices, tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    unknown = await a.call("GET", "/v1/memory/documents", params={"department": "x"}, expect=400)
    assert unknown["error"]["param"] == "department" and "unknown filter 'department'" in unknown["error"]["message"]
    bad = await a.call("POST", "/v1/memory/search", json={"query": "q", "filters": {"author": "me"}}, expect=400)
    assert bad["error"]["code"] == "unknown_filter" and bad["error"]["param"] == "filters.author"
    backwards = await a.call("POST", "/v1/memory/search", expect=400, json={
        "query": "q", "filters": {"time_range": {"from": "2024-01-01", "to": "2023-01-01"}}})
    assert backwards["error"]["code"] == "invalid_filter"
    cases = [
        (await a.upload(expect=400, text="   "), 400, "empty_document"),
        (await a.upload(expect=400, text="ok", shelf="x"), 400, "invalid_value"),
        (await a.upload(expect=400, text="ok", domain="Not A Slug"), 400, "invalid_value"),
        (await a.upload(expect=413, text="word " * 120_000), 413, "document_too_large"),
        (await a.upload_file("empty.md", b"", "text/markdown", expect=400), 400, "empty_document"),
        (await a.upload_file("slides.pptx", b"PK\x03\x04", "application/vnd.ms-powerpoint", expect=400), 400,
         "unsupported_document_type"),
        (await a.upload_file("fake.pdf", b"not a pdf", "application/pdf", expect=400), 400, "invalid_document"),
        (await a.upload_file("scan.pdf", text_pdf([]), "application/pdf", expect=400), 400, "empty_document"),
        (await a.upload_file("bomb.pdf", expanding_pdf(400, 600_000), "application/pdf", expect=413), 413,
         "document_too_large"),  # 5 KB that read as 240 million characters: refused at page 1 (below)
        (await a.upload_file("big.txt", b"a" * (6 * 1024 * 1024), "text/plain", expect=413), 413,
         "document_too_large"),
    ]
    two = await a.gateway.post("/v1/memory/documents", headers=a.headers, files=[
        ("file", ("a.md", b"# A", "text/markdown")), ("file", ("b.md", b"# B", "text/markdown"))])
    cases.append((two.json(), two.status_code, "invalid_value"))
    cases.append((await a.upload_file("a.md", b"# A", "text/markdown", expect=400, shelf="x"), 400, "invalid_value"))
    for body, status, code in cases:
        assert body["error"]["code"] == code, body
        assert body["error"]["type"] == "invalid_request_error" and body["error"]["message"], status
    bomb = next(body for body, _, _ in cases if "page" in body["error"]["message"])
    assert "more than 500000 characters of text (by page 1 of 400" in bomb["error"]["message"]
    assert (await a.call("GET", "/v1/memory/documents"))["total"] == 0  # nothing was stored
    anonymous = await graph_services.gateway.get("/v1/memory/documents")
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "invalid_api_key"
