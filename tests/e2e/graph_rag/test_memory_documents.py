"""Scoped memory end to end (real fleet, official openai SDK, scripted models): a tenant's documents
uploaded through POST /v1/memory/documents reach the judge of that tenant's question, scoped by the domain
the planner extracted from the routed category (no extra model call) — another tenant's document of the
same domain and the same tenant's document of another domain do not — and the answer's moe.sources
names the document it came from."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import Scripted
from tests.e2e.conftest import _create_key
from tests.e2e.helpers import calls_for, plan_reply
from tests.support.fleet import Fleet
from tests.support.moe_fields import moe

pytestmark = pytest.mark.e2e
VPN_A = ("# VPN tokens\n\nTo reset a VPN token on the office network, open the self-service portal at "
         "portal.acme.example and choose 'Re-enrol token'; the helpdesk extension is 4711.")
LEAVE_A = "# Parental leave\n\nParental leave requests go to HR 8 weeks ahead under the works agreement."
VPN_B = "# VPN tokens at Globex\n\nGlobex staff reset VPN tokens only by calling the security desk on 5550."


def _upload(base_url: str, key: str, **body: Any) -> dict[str, Any]:
    response = httpx.post(f"{base_url}/memory/documents", headers={"Authorization": f"Bearer {key}"}, json=body,
                          timeout=60)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _delete_all(base_url: str, key: str) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    for doc in httpx.get(f"{base_url}/memory/documents", headers=headers, timeout=30).json()["data"]:
        httpx.delete(f"{base_url}/memory/documents/{doc['id']}", headers=headers, timeout=30)


def test_the_judge_sees_only_the_tenants_documents_of_the_planned_domain_with_their_source(
        fleet: Fleet, infra: dict[str, str], scripted: Scripted, base_url: str) -> None:
    tenant_a, tenant_b = f"mem-a-{uuid.uuid4().hex[:6]}", f"mem-b-{uuid.uuid4().hex[:6]}"
    key_a = asyncio.run(_create_key(infra["postgres"], "user", tenant_a))
    key_b = asyncio.run(_create_key(infra["postgres"], "user", tenant_b))
    documents_url = f"{fleet['control-plane'].url}/v1"  # documents are the control plane's
    try:
        vpn = _upload(documents_url, key_a, text=VPN_A, domain="technical", source="it/vpn.md")
        _upload(documents_url, key_a, text=LEAVE_A, domain="legal", source="hr/leave.md")
        _upload(documents_url, key_b, text=VPN_B, domain="technical", source="globex/vpn.md")
        m = f"M{uuid.uuid4().hex[:8]}"
        scripted.script([
            {"model": "planner-model", "contains": m, "reply": plan_reply(("technical_support", f"VPN reset {m}"))},
            {"model": "expert-model", "contains": m, "reply": "Use the self-service portal.\nCONFIDENCE: medium"},
            {"model": "judge-model", "contains": m, "reply": "Re-enrol the token in the self-service portal."},
        ])
        client = openai.OpenAI(base_url=base_url, api_key=key_a, max_retries=0, timeout=90)
        response: Any = client.chat.completions.create(model="moe-orchestrator", messages=[
            {"role": "user", "content": f"How do I reset my VPN token for the office network? {m}"}])
        assert response.choices[0].message.content == "Re-enrol the token in the self-service portal."
        calls = calls_for(scripted.calls(), m)
        assert [c["model"] for c in calls].count("planner-model") == 1  # the filters cost no model call
        judge = "\n".join(str(msg["content"]) for c in calls if c["model"] == "judge-model" for msg in c["messages"])
        assert "[source: VPN tokens (it/vpn.md)]" in judge and "helpdesk extension is 4711" in judge
        assert "security desk on 5550" not in judge  # another tenant's document of the same domain
        assert "Parental leave" not in judge  # the tenant's document of another domain
        documents = [s for s in moe(response)["sources"] if s["kind"] == "document"]
        assert [(s["title"], s["url"]) for s in documents] == [
            ("VPN tokens (it/vpn.md)", f"/v1/memory/documents/{vpn['id']}")]
    finally:
        _delete_all(documents_url, key_a)
        _delete_all(documents_url, key_b)


def test_a_document_is_deleted_by_its_uploader_or_a_tenant_admin_not_by_another_user(
        fleet: Fleet, infra: dict[str, str]) -> None:
    """A clinician's key deleted the knowledge owner's document (a hospital's trial): a document is deleted by the
    principal who uploaded it or by an admin of the tenant (policy/opa/memory.rego, memory.document_delete)."""
    tenant = f"mem-d-{uuid.uuid4().hex[:6]}"
    owner, nurse, admin = (asyncio.run(_create_key(infra["postgres"], role, tenant))  # each its own principal
                           for role in ("user", "user", "admin"))
    url = f"{fleet['control-plane'].url}/v1/memory/documents"
    ward = _upload(f"{fleet['control-plane'].url}/v1", owner, domain="medical", source="ward7/escalation.md",
                   text="# Ward 7 escalation\n\nA Zelvora score of 5 or more: call the rapid response team at once.")
    notes = _upload(f"{fleet['control-plane'].url}/v1", owner, text="# Notes\n\nThe owner's own notes.")
    assert ward["uploaded_by"] and ward["uploaded_by"].startswith("sa-")

    def delete(key: str, doc: dict[str, Any]) -> httpx.Response:
        return httpx.delete(f"{url}/{doc['id']}", headers={"Authorization": f"Bearer {key}"}, timeout=30)

    refused = delete(nurse, ward)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_document_owner", refused.text
    assert ward["uploaded_by"] in refused.json()["error"]["message"]
    kept = httpx.get(f"{url}/{ward['id']}", headers={"Authorization": f"Bearer {owner}"}, timeout=30)
    assert kept.status_code == 200 and kept.json()["uploaded_by"] == ward["uploaded_by"]
    assert delete(admin, ward).status_code == 200  # the tenant's admin
    assert delete(owner, notes).status_code == 200  # the uploader
