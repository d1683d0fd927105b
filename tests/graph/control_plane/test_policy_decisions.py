"""Write decisions by Open Policy Agent (the fleet's `opa` over policy/opa, started by the infra fixture), through
the control plane on the real Neo4j, Postgres and Kafka: a knowledge import's domains come from its entities and
the graph (a `math`-labelled bundle that adds a medical fact waits for two approvers); the two admin scopes (a
tenant admin administers its own tenant only, the fleet operator every tenant, its cross-tenant reads audited);
every decision an audit record with the policy's version; OPA unreachable: 503, nothing written."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from moe_core.knowledge.graph import GraphDB
from moe_core.knowledge.graph.bundles import BundleEntity, BundleRelation, Origin, seal
from tests.graph.conftest import GraphServices
from tests.graph.graph_ingest.test_quarantine_and_api import assert_openai_error, bearer
from tests.graph.helpers import relations, titles
from tests.support.keys import person_key

pytestmark = pytest.mark.infra


def math_labelled_medical_fact() -> dict[str, Any]:
    """Ibuprofen (a drug in the base ontology) TREATS a new entity, every label saying math."""
    origin = Origin.model_validate({"tenant": "elsewhere", "exported_at": "2026-01-01T00:00:00Z",
                                    "exported_by": "test", "graph_version": 0, "selection": {"domain": "math"}})
    return seal(origin, [BundleEntity(name="Ibuprofen", domain="math"), BundleEntity(name="Zorn Ache", domain="math")],
                [BundleRelation(subject="Ibuprofen", relation="TREATS", object="Zorn Ache", domain="math")])


async def decisions(services: GraphServices, count: int, **match: Any) -> list[dict[str, Any]]:
    """The policy_decision audit records whose details hold `match` (decision, subject, outcome ...)."""
    def wanted(m: dict[str, Any]) -> bool:
        return m["action"] == "policy_decision" and all(
            (m["subject"] if k == "subject" else m["details"].get(k)) == v for k, v in match.items())
    return await services.tap.wait(services.bus.topics.audit, wanted, count=count)


async def policy_version(api: httpx.AsyncClient, key: str) -> str:
    status = await api.get("/v1/admin/policy", headers=bearer(key))
    assert status.status_code == 200, status.text
    body = status.json()
    assert body["in_force"] and body["last_load_error"] is None and body["version"].startswith("sha256:")
    assert "knowledge.rego" in body["modules"] and body["files_version"] == body["version"]
    return str(body["version"])


async def test_a_math_labelled_medical_fact_waits_for_two_approvers(
        graph_services: GraphServices, graph_db: GraphDB, tenant: str) -> None:
    api = graph_services.gateway
    importer = await graph_services.admin_key_for(tenant)
    version = await policy_version(api, importer)
    created = await api.post("/v1/knowledge/imports", content=json.dumps(math_labelled_medical_fact()).encode(),
                             headers=bearer(importer))
    assert created.status_code == 201, created.text
    cs = created.json()
    assert (cs["status"], cs["approvals_required"]) == ("pending", 2) and "medical" in cs["domains"]
    assert await relations(graph_db, tenant) == []  # the label said math: nothing applied on import

    [record] = await decisions(graph_services, 1, subject=cs["id"], decision="knowledge.import")
    assert record["details"]["policy_version"] == version and record["details"]["outcome"] == "allowed"
    assert record["details"]["policy"] == "moe/knowledge/decision" and record["tenant_id"] == tenant
    given = record["details"]["input"]
    assert given["principal"]["id"] == record["actor"] and given["principal"]["role"] == "admin"
    assert given["resource"]["labels"] == ["math"] and given["resource"]["domains"]["resolved"] == ["medical"]
    assert record["details"]["result"]["approvals_required"] == 2

    approve = f"/v1/knowledge/imports/{cs['id']}/approve"
    first, second = [(await person_key(graph_services.keystore, "approver", "admin", [tenant]))[1] for _ in range(2)]
    assert (await api.post(approve, headers=bearer(first))).json()["status"] == "pending"
    assert titles(await relations(graph_db, tenant)) == []
    assert_openai_error(await api.post(approve, headers=bearer(importer)), 403, "self_approval")
    assert (await api.post(approve, headers=bearer(second))).json()["status"] == "applied"
    assert titles(await relations(graph_db, tenant)) == ["Ibuprofen TREATS Zorn Ache"]
    outcomes = await decisions(graph_services, 3, subject=cs["id"], decision="knowledge.approve")
    assert sorted(r["details"]["outcome"] for r in outcomes) == ["allowed", "allowed", "denied"]
    assert {r["details"]["policy_version"] for r in outcomes} == {version}


async def test_memory_ingest_is_a_decision_on_the_domains_of_the_text(graph_services: GraphServices,
                                                                     tenant: str) -> None:
    admin = await graph_services.admin_key_for(tenant)
    accepted = await graph_services.gateway.post("/v1/memory/ingest", headers=bearer(admin), json={
        "text": "Under the new statute, the clinic's dosage of the drug is reviewed yearly."})
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    assert body["domains"] == ["legal", "medical"] and body["policy_version"].startswith("sha256:")
    [record] = await decisions(graph_services, 1, subject=body["id"], decision="memory.ingest")
    assert record["details"]["policy_version"] == body["policy_version"]
    assert record["details"]["result"]["protected_domains"] == ["legal", "medical"]


async def test_a_tenant_admin_administers_its_own_tenant_and_the_operator_every_tenant(
        graph_services: GraphServices, tenant: str) -> None:
    api, other = graph_services.gateway, f"gt-other-{uuid.uuid4().hex[:8]}"
    admin = await graph_services.admin_key_for(tenant)
    operator = (await graph_services.keystore.create("graph-operator", "operator", ["gt-operators"]))[1]

    def keys(body: dict[str, Any], key: str) -> Any:
        return api.post("/v1/admin/keys", json=body, headers=bearer(key))

    own = await keys({"name": "mine", "tenant_ids": [tenant], "role": "admin"}, admin)
    assert own.status_code == 201, own.text
    assert_openai_error(await keys({"name": "theirs", "tenant_ids": [other]}, admin), 403, "tenant_forbidden")
    assert_openai_error(await keys({"name": "both", "tenant_ids": [tenant, other]}, admin), 403, "tenant_forbidden")
    assert_openai_error(await keys({"name": "up", "tenant_ids": [tenant], "role": "operator"}, admin), 403,
                        "operator_only")
    assert_openai_error(await api.post("/v1/admin/tenants", json={"id": other}, headers=bearer(admin)), 403,
                        "operator_only")
    made = await api.post("/v1/admin/tenants", json={"id": other}, headers=bearer(operator))
    assert made.status_code == 201, made.text
    theirs = await keys({"name": "theirs", "tenant_ids": [other], "role": "admin"}, operator)
    assert theirs.status_code == 201, theirs.text

    their_key = theirs.json()["id"]
    assert_openai_error(await api.get(f"/v1/admin/keys/{their_key}", headers=bearer(admin)), 404, "key_not_found")
    assert_openai_error(await api.post(f"/v1/admin/keys/{their_key}/revoke", headers=bearer(admin)), 404,
                        "key_not_found")
    assert_openai_error(await api.get(f"/v1/admin/tenants/{other}", headers=bearer(admin)), 404, "tenant_not_found")
    listed = (await api.get("/v1/admin/keys", headers=bearer(admin))).json()["data"]
    assert their_key not in {k["id"] for k in listed} and own.json()["id"] in {k["id"] for k in listed}
    assert [t["id"] for t in (await api.get("/v1/admin/tenants", headers=bearer(admin))).json()["data"]] == [tenant]
    assert_openai_error(await api.patch(f"/v1/admin/tenants/{tenant}", json={"disabled": True}, headers=bearer(admin)),
                        403, "operator_only")
    assert (await api.patch(f"/v1/admin/tenants/{tenant}", json={"name": "ours"}, headers=bearer(admin))).json()[
        "name"] == "ours"

    seen = await api.get(f"/v1/admin/keys/{their_key}", headers=bearer(operator))  # a cross-tenant read: audited
    assert seen.status_code == 200 and seen.json()["tenant_ids"] == [other]
    denied = await decisions(graph_services, 2, subject=f"key:{their_key}", decision="key.read", outcome="denied")
    assert {r["actor"] for r in denied} == {denied[0]["details"]["input"]["principal"]["id"]}  # the tenant admin
    [read] = await decisions(graph_services, 1, subject=f"key:{their_key}", decision="key.read", outcome="allowed")
    assert read["tenant_id"] == other and read["details"]["result"]["cross_tenant"] is True
    assert read["details"]["outcome"] == "allowed" and read["details"]["policy_version"].startswith("sha256:")
    refused = await decisions(graph_services, 1, subject="key:new", decision="key.create", outcome="denied")
    assert refused and all(r["details"]["policy_version"].startswith("sha256:") for r in refused)


async def test_nothing_is_written_while_the_policy_engine_is_unreachable(graph_services: GraphServices,
                                                                         tenant: str) -> None:
    api, client = graph_services.gateway, graph_services.apps["control-plane"].state.policy
    admin = await graph_services.admin_key_for(tenant)
    before = {k.id for k in await graph_services.keystore.keys(tenant)}
    saved, client.url = client.url, "http://127.0.0.1:9"  # nothing listens there
    try:
        refused = await api.post("/v1/admin/keys", json={"name": "k", "tenant_ids": [tenant]}, headers=bearer(admin))
        assert_openai_error(refused, 503, "policy_unavailable")
        assert "policy engine" in refused.json()["error"]["message"] and refused.headers["retry-after"]
        ingest = await api.post("/v1/memory/ingest", json={"text": "a drug"}, headers=bearer(admin))
        assert_openai_error(ingest, 503, "policy_unavailable")
        assert_openai_error(await api.get("/v1/admin/policy", headers=bearer(admin)), 503, "policy_unavailable")
    finally:
        client.url = saved
    assert {k.id for k in await graph_services.keystore.keys(tenant)} == before


async def test_a_key_rotation_is_an_audit_event_naming_who_rotated_which_key(graph_services: GraphServices,
                                                                              tenant: str) -> None:
    api, admin = graph_services.gateway, await graph_services.admin_key_for(tenant)
    made = await api.post("/v1/admin/keys", json={"name": "bot", "tenant_ids": [tenant]}, headers=bearer(admin))
    assert made.status_code == 201, made.text
    key_id = made.json()["id"]
    rotated = await api.post(f"/v1/admin/keys/{key_id}/rotate", headers=bearer(admin))
    assert rotated.status_code == 200, rotated.text
    [event] = await graph_services.tap.wait(graph_services.bus.topics.audit, lambda m: m["action"] == "key.rotated"
                                            and m["subject"] == f"key:{key_id}")
    rotator = await graph_services.keystore.verify(admin)
    assert rotator is not None
    assert (event["actor"], event["tenant_id"]) == (f"key:{rotator.id}", tenant)
    assert event["details"]["by_principal"] == rotator.principal_id
    assert (event["details"]["name"], event["details"]["role"], event["details"]["id"]) == ("bot", "user", key_id)
    assert event["details"]["rotated_at"] is not None
    assert made.json()["secret"] not in str(event) and rotated.json()["secret"] not in str(event)
    [decided] = await decisions(graph_services, 1, subject=f"key:{key_id}", decision="key.rotate")
    assert decided["details"]["outcome"] == "allowed" and decided["details"]["policy_version"].startswith("sha256:")
