"""A high-blast-radius triple lands in quarantine and is written only after an admin approves it through
the gateway; the rest of the gateway's graph API (stats, search, memory ingest) and its errors."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from moe_core.knowledge.graph import GraphDB, GraphStore, Provenance, Triple
from moe_core.knowledge.graph.quarantine import Quarantine
from tests.conftest import Scripted
from tests.graph.conftest import GraphServices
from tests.graph.graph_ingest.test_learning_journey import extraction_rule, ingest_event, learn
from tests.graph.helpers import relations, titles

pytestmark = pytest.mark.infra


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_openai_error(response: httpx.Response, status: int, code: str | None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert error["code"] == code


async def test_a_dense_triple_waits_in_quarantine_until_an_admin_approves_it(
        graph_services: GraphServices, graph_db: GraphDB, scripted: Scripted, tenant: str) -> None:
    marker, api = uuid.uuid4().hex[:8], graph_services.gateway
    scripted.script([extraction_rule(marker, [
        ("Zentavir", "IS_A", "Drug", 0.9),  # Drug reaches ~47 entities in two hops (limit 30): quarantined
        ("Zentavir", "PART_OF", "Blorp Kit", 0.8),  # two new entities: reach 0, no protected domain: written
        ("Zentavir", "AFFECTS", "Disease", 0.5)])])  # quarantined too; this one will be rejected
    event = ingest_event(tenant, marker)
    await learn(graph_services, event)
    assert titles(await relations(graph_db, tenant)) == ["Zentavir PART_OF Blorp Kit"]
    held = graph_services.tap.seen(graph_services.bus.topics.audit,
                                   lambda m: m["response_id"] == event.response_id and m["action"] == "quarantined")
    assert sorted(h["details"]["triple"]["object"] for h in held) == ["Disease", "Drug"]
    assert all(h["details"]["reach"] > h["details"]["threshold"] == 30 for h in held)

    admin, user = await graph_services.admin_key_for(tenant), await graph_services.user_key_for(tenant)
    listed = await api.get("/graph/quarantine", headers=bearer(user))
    assert listed.status_code == 200
    items = {i["object"]: i for i in listed.json()["data"]}
    assert sorted(items) == ["Disease", "Drug"]
    drug = items["Drug"]
    assert (drug["subject"], drug["relation"], drug["status"], drug["tenant"]) == (
        "Zentavir", "IS_A", "pending", tenant)
    assert drug["reach"] > 30 and drug["response_id"] == event.response_id
    assert drug["expires_at"] == pytest.approx(drug["created_at"] + 7 * 86_400)  # the original's 7 days

    assert_openai_error(await api.post(f"/graph/quarantine/{drug['id']}/approve", headers=bearer(user)),
                        403, "insufficient_role")
    other_admin = await graph_services.admin_key_for(f"{tenant}-other")
    assert_openai_error(await api.post(f"/graph/quarantine/{drug['id']}/approve", headers=bearer(other_admin)),
                        404, "not_found")
    assert_openai_error(await api.post(f"/graph/quarantine/{drug['id']}/approve"), 401, "invalid_api_key")
    assert titles(await relations(graph_db, tenant)) == ["Zentavir PART_OF Blorp Kit"]  # still not written

    # a drug is a medical fact (the server resolves the domain from the shared ontology): two principals approve
    first = await api.post(f"/graph/quarantine/{drug['id']}/approve", headers=bearer(admin),
                           json={"note": "checked by a pharmacist"})
    assert first.status_code == 200, first.text
    assert (first.json()["status"], len(first.json()["approvals"]), first.json()["approvals_required"]) == (
        "pending", 1, 2)
    assert titles(await relations(graph_db, tenant)) == ["Zentavir PART_OF Blorp Kit"]  # one pair of eyes: not yet
    approved = await api.post(f"/graph/quarantine/{drug['id']}/approve",
                              headers=bearer(await graph_services.second_approver_for(tenant)),
                              json={"note": "and by a physician"})
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert (body["status"], body["note"], len(body["approvals"])) == ("approved", "and by a physician", 2)
    assert body["decided_by"].startswith("key:") and body["approval_notes"] == ["checked by a pharmacist",
                                                                                "and by a physician"]
    rows = {f"{r['subject']} {r['type']} {r['object']}": r for r in await relations(graph_db, tenant)}
    assert sorted(rows) == ["Zentavir IS_A Drug", "Zentavir PART_OF Blorp Kit"]
    assert rows["Zentavir IS_A Drug"]["id"] == body["relation_id"]
    assert rows["Zentavir IS_A Drug"]["object_tenant"] == "__shared__"
    assert_openai_error(await api.post(f"/graph/quarantine/{drug['id']}/approve", headers=bearer(admin)),
                        409, "already_decided")

    rejected = await api.post(f"/graph/quarantine/{items['Disease']['id']}/reject", headers=bearer(admin))
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert "Zentavir AFFECTS Disease" not in titles(await relations(graph_db, tenant))
    decisions = await graph_services.tap.wait(
        graph_services.bus.topics.audit, lambda m: m["action"] in ("quarantine_approved", "quarantine_rejected")
        and m["subject"] in (drug["id"], items["Disease"]["id"]), count=2)
    assert sorted((d["action"], d["tenant_id"]) for d in decisions) == [
        ("quarantine_approved", tenant), ("quarantine_rejected", tenant)]
    assert next(d for d in decisions if d["action"] == "quarantine_approved")["details"]["relation_id"] == \
        body["relation_id"]
    pending = await api.get("/graph/quarantine", headers=bearer(user))
    assert pending.json()["data"] == []
    everything = await api.get("/graph/quarantine?status=all", headers=bearer(user))
    assert sorted(i["status"] for i in everything.json()["data"]) == ["approved", "rejected"]


async def test_stats_and_search_are_scoped_to_the_keys_tenants(
        graph_services: GraphServices, graph_db: GraphDB, scripted: Scripted, tenant: str) -> None:
    marker, api = uuid.uuid4().hex[:8], graph_services.gateway
    scripted.script([extraction_rule(marker, [("Frumbolin", "PART_OF", "Glorp Widget", 0.9)])])
    await learn(graph_services, ingest_event(tenant, marker))
    mine, stranger = await graph_services.user_key_for(tenant), await graph_services.user_key_for(f"{tenant}-s")
    stats = (await api.get("/graph/stats", headers=bearer(mine))).json()
    assert stats["object"] == "graph.stats" and stats["tenants"] == [tenant, "__shared__"]
    assert stats["by_tenant"][tenant] == {"entities": 2, "relations": 1}
    assert stats["by_tenant"]["__shared__"]["entities"] >= 200
    assert stats["relations_by_source"]["extracted"] == 1 and stats["quarantined"] == 0
    theirs = (await api.get("/graph/stats", headers=bearer(stranger))).json()
    assert theirs["by_tenant"][f"{tenant}-s"] == {"entities": 0, "relations": 0}

    found = (await api.get("/graph/search", params={"q": "frumbol"}, headers=bearer(mine))).json()["data"]
    assert [e["name"] for e in found] == ["Frumbolin"] and 0.55 <= found[0]["score"] < 1
    assert [(r["type"], r["other"], r["direction"]) for r in found[0]["relations"]] == [
        ("PART_OF", "Glorp Widget", "out")]
    assert (await api.get("/graph/search", params={"q": "frumbol"}, headers=bearer(stranger))).json()["data"] == []
    kept = await graph_db.read(  # each entity's vectors, kept on it for the next search
        "MATCH (e:Entity {tenant: $t}) RETURN e.name AS name, e.search_texts AS texts, e.search_vectors AS v", t=tenant)
    by_name = {row["name"]: row for row in kept}
    assert by_name["Frumbolin"]["texts"] == ["Frumbolin"] and len(by_name["Frumbolin"]["v"]) > 384
    shared = (await api.get("/graph/search", params={"q": "tylenol"}, headers=bearer(stranger))).json()["data"]
    assert (shared[0]["name"], shared[0]["score"]) == ("Paracetamol", 1.0)  # an alias: exact
    # semantic, not a substring: no name or alias contains "heart attacks"; best first, none below the threshold
    near = (await api.get("/graph/search", params={"q": "heart attacks", "limit": 3}, headers=bearer(mine))).json()
    assert near["data"][0]["name"] == "Myocardial Infarction" and near["data"][0]["score"] > 0.9
    scores = [e["score"] for e in near["data"]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True) and min(scores) >= 0.55
    assert all(e["tenant"] == "__shared__" for e in near["data"])
    for bad in ("", "?q=%20", f"?q={'x' * 201}", "?q=x&limit=0", "?q=x&limit=abc", "?q=x&limit=101"):
        assert_openai_error(await api.get(f"/graph/search{bad}", headers=bearer(mine)), 400, "invalid_value")
    assert_openai_error(await api.get("/graph/stats"), 401, "invalid_api_key")


async def test_memory_ingest_publishes_an_ingest_event_for_any_key_of_the_tenant(
        graph_services: GraphServices, scripted: Scripted, tenant: str) -> None:
    api = graph_services.gateway
    admin, user = await graph_services.admin_key_for(tenant), await graph_services.user_key_for(tenant)
    body = {"text": "Zorbicillin treats ear infections.", "question": "What treats ear infections?",
            "knowledge_type": "medical", "confidence": "high"}
    accepted = await api.post("/v1/memory/ingest", json=body, headers=bearer(admin))
    assert accepted.status_code == 202, accepted.text
    receipt = accepted.json()
    assert (receipt["object"], receipt["status"], receipt["tenant"]) == ("memory.ingest", "queued", tenant)
    [event] = await graph_services.tap.wait(graph_services.bus.topics.ingest,
                                            lambda m: m["response_id"] == receipt["id"])
    assert (event["tenant_id"], event["answer"], event["knowledge_type"], event["confidence"]) == (
        tenant, body["text"], "medical", "high")
    # a user key learns into its own tenant too (Claude Code's memory hook); a medical text waits for review
    by_user = await api.post("/v1/memory/ingest", json=body, headers=bearer(user))
    assert by_user.status_code == 202 and by_user.json()["review_domains"] == ["medical"], by_user.text
    assert_openai_error(await api.post("/v1/memory/ingest", json={**body, "tenant": "someone-else"},
                                       headers=bearer(user)), 403, "tenant_forbidden")
    assert_openai_error(await api.post("/v1/memory/ingest", json=body), 401, "invalid_api_key")
    assert_openai_error(await api.post("/v1/memory/ingest", json={**body, "tenant": "someone-else"},
                                       headers=bearer(admin)), 403, "tenant_forbidden")
    assert_openai_error(await api.post("/v1/memory/ingest", json={"text": ""}, headers=bearer(admin)),
                        400, "invalid_value")
    assert_openai_error(await api.post("/v1/memory/ingest", content=b"{nope", headers=bearer(admin)), 400,
                        "invalid_value")
    assert_openai_error(await api.post("/v1/memory/ingest", json={**body, "extra": 1}, headers=bearer(admin)),
                        400, "invalid_value")


async def test_approvals_at_the_same_moment_write_the_triple_once(graph_db: GraphDB, tenant: str) -> None:
    """Four-eyes under concurrency: three principals approve an item that needs two at once; the item's write lock
    orders them, so exactly one approval completes it and writes the triple, and the third finds it decided."""
    quarantine = Quarantine(GraphStore(graph_db))
    prov = Provenance(tenant=tenant, source="extracted", domain="medical", origin=f"r-{uuid.uuid4().hex[:8]}")
    qid, _ = await quarantine.hold(Triple(subject="Quorvex", relation="TREATS", object="Gout", confidence=0.9), prov,
                                   0, 30, reason="protected domain medical", domains=["medical"])
    outcomes = await asyncio.gather(*(quarantine.approve(qid, [tenant], f"person-{n}", f"k{n}", f"key:k{n}", "", 2)
                                      for n in range(3)))
    applied = [o for o in outcomes if o is not None and o.written is not None]
    assert len(applied) == 1 and sum(o is None for o in outcomes) == 1  # one completes it, one comes too late
    item = await quarantine.get(qid, [tenant])
    assert item is not None and item["status"] == "approved" and len(item["approved_by"]) == 2
    assert titles(await relations(graph_db, tenant)) == ["Quorvex TREATS Gout"]
    assert await quarantine.approve(qid, [tenant], "person-0", "k9", "key:k9", "", 2) is None  # decided: no more


async def test_a_quarantined_triple_nobody_decides_expires(graph_db: GraphDB, tenant: str) -> None:
    """The original keeps moe:quarantine for 7 days; here an item past its time to live is `expired`."""
    quarantine = Quarantine(GraphStore(graph_db))
    prov = Provenance(tenant=tenant, source="extracted", domain="general", origin=f"r-{uuid.uuid4().hex[:8]}")
    old, _ = await quarantine.hold(Triple(subject="Qa", relation="USES", object="Qb", confidence=0.9), prov, 25, 20,
                                   ttl_s=0.001)
    kept, _ = await quarantine.hold(Triple(subject="Qc", relation="USES", object="Qd", confidence=0.9), prov, 25, 20,
                                    ttl_s=3600)
    forever, _ = await quarantine.hold(Triple(subject="Qe", relation="USES", object="Qf", confidence=0.9), prov, 25,
                                       20)
    assert [i["id"] for i in await quarantine.pending([tenant], "expired")] == [old]
    assert sorted(i["id"] for i in await quarantine.pending([tenant])) == sorted([kept, forever])
    assert (await quarantine.get(old, [tenant]) or {})["status"] == "expired"
    assert await quarantine.approve(old, [tenant], "p1", "k1", "admin", "", 1) is None  # too late to approve
    assert (await quarantine.reject(kept, [tenant], actor="admin")) is not None
    assert titles(await relations(graph_db, tenant)) == []
