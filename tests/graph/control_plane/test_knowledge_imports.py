"""Approval-gated knowledge imports (the four-eyes rule) through the gateway on the real Neo4j, Postgres and
Kafka: export a bundle, import it as a pending change set (graph unchanged), read its diff, approvals by
admin keys other than the importer's (as many as policy/knowledge-imports.yaml asks), idempotent
re-approval, rejection, bad bundles, and an audit event for every step."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from control_plane.knowledge.policy import ImportPolicy, KnowledgeSettings, PolicyError, load_policy
from moe_core.knowledge.graph import GraphDB, GraphStore, Provenance, Triple, bundles_graph
from moe_core.knowledge.graph.bundles import (
    BundleEntity,
    BundleError,
    BundleRelation,
    Origin,
    Selection,
    digest_of,
    json_schema,
    seal,
    verify,
)
from moe_core.knowledge.graph.names import entity_uid, normalize
from moe_core.knowledge.graph.trust import WEIGHT_EXTRACTED, TrustPolicy
from moe_core.runtime.observability.metrics import REGISTRY
from tests.graph.conftest import GraphServices
from tests.graph.graph_ingest.test_quarantine_and_api import assert_openai_error, bearer
from tests.graph.helpers import purge, relations, titles
from tests.support.keys import person_key

REPO = Path(__file__).resolve().parents[3]
VERIFY = "MATCH ()-[r:REL {id: $id}]->() SET r.verified = true"


@pytest.fixture(scope="module")
def policy() -> ImportPolicy:
    return load_policy(KnowledgeSettings().policy_path())


@pytest.fixture
async def target(graph_db: GraphDB) -> AsyncIterator[str]:
    name = f"gt-{uuid.uuid4().hex[:10]}"
    yield name
    await purge(graph_db, name)


async def seed(db: GraphDB, tenant: str, triples: list[tuple[str, str, str, float, str]]) -> dict[str, str]:
    store, ids = GraphStore(db), {}
    for subject, relation, obj, confidence, domain in triples:
        triple = Triple(subject=subject, relation=relation, object=obj, confidence=confidence)
        written = await store.write_triple(triple, Provenance(tenant, "extracted", domain=domain, origin="seed"))
        ids[f"{subject} {relation} {obj}"] = written.id
    return ids


async def source_and_target(db: GraphDB, source: str, target: str) -> None:
    """The source tenant knows three medical facts and one technical one; the target already holds one of
    them with less confidence, and a verified fact that contradicts another."""
    await seed(db, source, [("Quorvexin", "TREATS", "Glimmer Syndrome", 0.8, "medical"),
                            ("Quorvexin", "IS_A", "Drug", 0.9, "medical"),
                            ("Blorvane", "TREATS", "Glimmer Syndrome", 0.7, "medical"),
                            ("Quorvexin Cache", "USES", "Flarnix Store", 0.9, "technical")])
    ids = await seed(db, target, [("Quorvexin", "TREATS", "Glimmer Syndrome", 0.5, "medical"),
                                  ("Blorvane", "CAUSES", "Glimmer Syndrome", 0.6, "medical")])
    await db.write(VERIFY, id=ids["Blorvane CAUSES Glimmer Syndrome"])


async def export(api: httpx.AsyncClient, key: str, **selection: Any) -> dict[str, Any]:
    response = await api.post("/v1/knowledge/export", json=selection, headers=bearer(key))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def import_bundle(api: httpx.AsyncClient, key: str, bundle: dict[str, Any] | bytes) -> httpx.Response:
    content = bundle if isinstance(bundle, bytes) else json.dumps(bundle).encode()
    return await api.post("/v1/knowledge/imports", content=content, headers=bearer(key))


def counted(action: str) -> float:
    return REGISTRY.get_sample_value("moe_knowledge_import_events_total", {"action": action}) or 0.0


def snapshot(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["id"], r["subject"], r["type"], r["object"], r["source"], r["version"], r["trust"]) for r in rows]


def triples(items: list[dict[str, Any]]) -> list[str]:
    return sorted(f"{i['subject']} {i['relation']} {i['object']}" for i in items)


async def audit_actions(services: GraphServices, cs_id: str, count: int) -> list[str]:
    events = await services.tap.wait(services.bus.topics.audit, lambda m: m["response_id"] == cs_id, count=count)
    return sorted(e["action"] for e in events)


@pytest.mark.infra
async def test_an_import_waits_for_other_admins_then_applies_once_with_imported_trust(
        graph_services: GraphServices, graph_db: GraphDB, tenant: str, target: str, policy: ImportPolicy) -> None:
    api = graph_services.gateway
    await source_and_target(graph_db, tenant, target)
    exporter = await graph_services.user_key_for(tenant)  # exporting is a read: any key of the tenant
    bundle = await export(api, exporter, domain="medical")
    assert (bundle["format"], bundle["version"], bundle["origin"]["tenant"]) == ("moe-knowledge-bundle", 1, tenant)
    assert bundle["digest"] == digest_of(bundle) and bundle["origin"]["selection"]["domain"] == "medical"
    assert triples([{"subject": r["subject"], "relation": r["relation"], "object": r["object"]}
                    for r in bundle["relations"]]) == [
        "Blorvane TREATS Glimmer Syndrome", "Quorvexin IS_A Drug", "Quorvexin TREATS Glimmer Syndrome"]
    assert {e["name"] for e in bundle["entities"]} == {"Blorvane", "Drug", "Glimmer Syndrome", "Quorvexin"}

    before = snapshot(await relations(graph_db, target))
    importer = await graph_services.admin_key_for(target)
    created_events = counted("knowledge_import_created")
    created = await import_bundle(api, importer, bundle)
    assert created.status_code == 201, created.text
    cs = created.json()
    required = policy.approvals_required(cs["domains"])
    assert "medical" in cs["domains"] and required == 2  # policy/knowledge-imports.yaml: medical needs two
    assert (cs["object"], cs["status"], cs["tenant"], cs["approvals_required"], cs["approvals"]) == (
        "knowledge.change_set", "pending", target, required, [])
    assert cs["bundle"]["digest"] == bundle["digest"] and cs["policy_digest"] == policy.digest
    assert snapshot(await relations(graph_db, target)) == before  # importing wrote nothing
    assert counted("knowledge_import_created") == created_events + 1
    pending = await graph_services.keystore.pool.fetchval(
        "SELECT count(*) FROM knowledge_change_sets WHERE status = 'pending'")
    assert REGISTRY.get_sample_value("moe_knowledge_imports_pending") == pending >= 1

    diff = cs["diff"]["relations"]
    assert triples(diff["added"]) == ["Quorvexin IS_A Drug"]
    assert triples(diff["changed"]) == ["Quorvexin TREATS Glimmer Syndrome"]
    assert (diff["changed"][0]["before"], diff["changed"][0]["after"]) == ({"confidence": 0.5}, {"confidence": 0.8})
    assert triples(diff["conflicting"]) == ["Blorvane TREATS Glimmer Syndrome"]
    assert [(c["type"], c["verified"]) for c in diff["conflicting"][0]["conflicts_with"]] == [("CAUSES", True)]
    assert diff["unchanged"] == [] and cs["diff"]["entities"]["added"] == []
    assert sorted(cs["diff"]["entities"]["unchanged"]) == ["Blorvane", "Drug", "Glimmer Syndrome", "Quorvexin"]

    viewer = await graph_services.user_key_for(target)
    listed = (await api.get("/v1/knowledge/imports", headers=bearer(viewer))).json()["data"]
    assert [(c["id"], c["diff"]) for c in listed] == [(cs["id"], cs["diff"])]
    assert (await api.get(f"/v1/knowledge/imports/{cs['id']}", headers=bearer(viewer))).json() == cs
    approve = f"/v1/knowledge/imports/{cs['id']}/approve"
    assert_openai_error(await api.post(approve, headers=bearer(importer)), 403, "self_approval")
    assert_openai_error(await api.post(approve, headers=bearer(viewer)), 403, "insufficient_role")
    assert_openai_error(await api.post(approve, headers=bearer(graph_services.admin_key)), 404, "not_found")
    assert_openai_error(await api.post(f"/v1/knowledge/imports/kcs-{uuid.uuid4().hex}/approve",
                                       headers=bearer(importer)), 404, "not_found")

    approvers = [(await person_key(graph_services.keystore, "approver", "admin", [target]))[1]
                 for _ in range(required + 1)]
    for n, approver in enumerate(approvers[:required], 1):
        assert snapshot(await relations(graph_db, target)) == before  # not yet: n - 1 < required approvals
        response = await api.post(approve, json={"note": f"checked by reviewer {n}"}, headers=bearer(approver))
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["approvals"]) == n and body["approvals"][-1]["note"] == f"checked by reviewer {n}"
        assert body["status"] == ("applied" if n == required else "pending")
        assert_openai_error(await api.post(approve, headers=bearer(approver)), 403, "duplicate_approval")

    rows = {f"{r['subject']} {r['type']} {r['object']}": r for r in await relations(graph_db, target)}
    assert sorted(rows) == ["Blorvane CAUSES Glimmer Syndrome", "Quorvexin IS_A Drug",
                            "Quorvexin TREATS Glimmer Syndrome"]  # the conflicting fact was not written
    imported = rows["Quorvexin IS_A Drug"]
    assert (imported["source"], imported["response_id"], imported["object_tenant"]) == (
        "imported", f"import:{cs['id']}", "__shared__")
    expected = TrustPolicy().trust(confidence=0.9, source="imported", asserted_at=0, verified=False, now=0)
    assert imported["trust"] == pytest.approx(expected, rel=1e-3) and expected < 0.9 * WEIGHT_EXTRACTED
    changed = rows["Quorvexin TREATS Glimmer Syndrome"]
    assert (changed["source"], changed["version"], changed["assertions"]) == ("extracted", 2, 2)
    applied = (await api.get(f"/v1/knowledge/imports/{cs['id']}", headers=bearer(viewer))).json()
    assert applied["decided_by"].startswith("key:") and applied["result"]["skipped_conflicting"] == [
        diff["conflicting"][0]["i"]]

    after = snapshot(await relations(graph_db, target))
    again = await api.post(approve, headers=bearer(approvers[-1]))  # a further admin: idempotent, nothing written
    assert again.status_code == 200 and again.json()["status"] == "applied" and len(again.json()["approvals"]) == 2
    assert snapshot(await relations(graph_db, target)) == after
    assert_openai_error(await api.post(f"/v1/knowledge/imports/{cs['id']}/reject", headers=bearer(approvers[-1])),
                        409, "already_decided")
    assert (await api.get("/v1/knowledge/imports", headers=bearer(viewer))).json()["data"] == []

    actions = await audit_actions(graph_services, cs["id"], 8)
    assert actions == sorted(["knowledge_import_created", "knowledge_import_refused",
                              *["knowledge_import_approved"] * 2, "knowledge_import_refused",
                              "knowledge_import_refused", "knowledge_import_applied",
                              "knowledge_import_already_applied"])
    exports = graph_services.tap.seen(graph_services.bus.topics.audit,
                                      lambda m: m["action"] == "knowledge_exported" and m["tenant_id"] == tenant)
    assert [e["details"]["digest"] for e in exports] == [bundle["digest"]]


@pytest.mark.infra
async def test_a_rejected_import_writes_nothing(graph_services: GraphServices, graph_db: GraphDB, tenant: str,
                                                target: str) -> None:
    api = graph_services.gateway
    await source_and_target(graph_db, tenant, target)
    bundle = await export(api, await graph_services.admin_key_for(tenant), entities=["Quorvexin Cache"])
    assert [(r["subject"], r["relation"], r["object"]) for r in bundle["relations"]] == [
        ("Quorvexin Cache", "USES", "Flarnix Store")]
    before = snapshot(await relations(graph_db, target))
    importer = await graph_services.admin_key_for(target)
    cs = (await import_bundle(api, importer, bundle)).json()
    assert (cs["status"], cs["domains"], cs["approvals_required"]) == ("pending", ["technical"], 1)
    assert triples(cs["diff"]["relations"]["added"]) == ["Quorvexin Cache USES Flarnix Store"]
    assert sorted(e["name"] for e in cs["diff"]["entities"]["added"]) == ["Flarnix Store", "Quorvexin Cache"]
    reject = f"/v1/knowledge/imports/{cs['id']}/reject"
    assert_openai_error(await api.post(reject, headers=bearer(importer)), 403, "self_approval")
    reviewer = (await graph_services.keystore.create("reviewer", "admin", [target]))[1]
    rejected = await api.post(reject, json={"note": "not our stack"}, headers=bearer(reviewer))
    assert rejected.status_code == 200, rejected.text
    assert (rejected.json()["status"], rejected.json()["note"]) == ("rejected", "not our stack")
    assert snapshot(await relations(graph_db, target)) == before
    other = (await person_key(graph_services.keystore, "reviewer", "admin", [target]))[1]  # approvals: people's
    assert_openai_error(await api.post(f"/v1/knowledge/imports/{cs['id']}/approve", headers=bearer(other)),
                        409, "already_decided")
    assert snapshot(await relations(graph_db, target)) == before
    listed = (await api.get("/v1/knowledge/imports?status=rejected", headers=bearer(importer))).json()["data"]
    assert [c["id"] for c in listed] == [cs["id"]]
    assert await audit_actions(graph_services, cs["id"], 3) == [
        "knowledge_import_created", "knowledge_import_refused", "knowledge_import_rejected"]


async def principal_with_keys(api: httpx.AsyncClient, admin: str, tenant: str, name: str,
                              keys: int) -> tuple[str, list[str]]:
    """A service-account principal made through the admin API, and the secrets of `keys` admin keys of it."""
    made = await api.post("/v1/admin/principals", json={"kind": "service", "tenant_id": tenant, "display_name": name},
                          headers=bearer(admin))
    assert made.status_code == 201, made.text
    principal = made.json()["id"]
    secrets = []
    for n in range(keys):
        key = await api.post("/v1/admin/keys", json={"name": f"{name} {n}", "role": "admin", "tenant_ids": [tenant],
                                                     "principal_id": principal}, headers=bearer(admin))
        assert key.status_code == 201 and key.json()["principal_id"] == principal, key.text
        secrets.append(key.json()["secret"])
    return principal, secrets


async def person_with_keys(services: GraphServices, tenant: str, name: str, keys: int) -> tuple[str, list[str]]:
    """A person and the secrets of `keys` admin keys of theirs, made as the operator's key CLI makes them."""
    principal, first = await person_key(services.keystore, name, "admin", [tenant])
    more = [(await services.keystore.create(f"{name} {n}", "admin", [tenant], principal_id=principal))[1]
            for n in range(1, keys)]
    return principal, [first, *more]


@pytest.mark.infra
async def test_four_eyes_counts_principals_not_keys(graph_services: GraphServices, graph_db: GraphDB, tenant: str,
                                                    target: str) -> None:
    api = graph_services.gateway
    await source_and_target(graph_db, tenant, target)
    bundle = await export(api, await graph_services.admin_key_for(tenant), domain="medical")  # two approvals
    admin = await graph_services.admin_key_for(target)
    importer, (imports, own_other_key) = await person_with_keys(graph_services, target, "importer", 2)
    reviewer, (first, second) = await person_with_keys(graph_services, target, "reviewer", 2)
    other, (third,) = await person_with_keys(graph_services, target, "second reviewer", 1)
    # one admin alone: the service accounts it makes do not approve, and it mints no key for another person
    bot, (bot_a,) = await principal_with_keys(api, admin, target, "approval bot", 1)
    as_reviewer = await api.post("/v1/admin/keys", json={"name": "as reviewer", "role": "admin", "tenant_ids": [target],
                                                         "principal_id": reviewer}, headers=bearer(admin))
    assert_openai_error(as_reviewer, 403, "person_key_forbidden")
    before = snapshot(await relations(graph_db, target))

    cs = (await import_bundle(api, imports, bundle)).json()
    assert (cs["status"], cs["approvals_required"], cs["importer_principal"]) == ("pending", 2, importer)
    approve = f"/v1/knowledge/imports/{cs['id']}/approve"
    refusal = await api.post(approve, headers=bearer(own_other_key))  # the importer's second admin key
    assert_openai_error(refusal, 403, "self_approval")
    assert importer in refusal.json()["error"]["message"]
    assert_openai_error(await api.post(f"/v1/knowledge/imports/{cs['id']}/reject", headers=bearer(own_other_key)),
                        403, "self_approval")

    assert_openai_error(await api.post(approve, headers=bearer(bot_a)), 403, "approver_not_a_person")
    once = await api.post(approve, json={"note": "first pair of eyes"}, headers=bearer(first))
    assert once.status_code == 200 and once.json()["status"] == "pending", once.text
    assert_openai_error(await api.post(approve, headers=bearer(second)), 403, "duplicate_approval")  # same person
    assert snapshot(await relations(graph_db, target)) == before  # one principal, however many keys: not applied

    done = await api.post(approve, json={"note": "second pair of eyes"}, headers=bearer(third))
    assert done.status_code == 200 and done.json()["status"] == "applied", done.text
    assert [a["principal"] for a in done.json()["approvals"]] == [reviewer, other]
    assert snapshot(await relations(graph_db, target)) != before
    events = await graph_services.tap.wait(graph_services.bus.topics.audit,
                                           lambda m: m["response_id"] == cs["id"], count=8)
    assert {e["details"]["principal"] for e in events} == {importer, reviewer, other, bot}


def math_bundle(tenant: str) -> dict[str, Any]:
    origin = Origin.model_validate({"tenant": tenant, "exported_at": "2026-01-01T00:00:00Z", "exported_by": "test",
                                    "graph_version": 0, "selection": Selection(domain="math")})
    entities = [BundleEntity(name="Zorn Lemma", domain="math"), BundleEntity(name="Flurb Theorem", domain="math")]
    return seal(origin, entities,
                [BundleRelation(subject="Zorn Lemma", relation="IS_A", object="Flurb Theorem", confidence=0.8,
                                domain="math")])


@pytest.mark.infra
async def test_a_domain_the_policy_does_not_gate_is_applied_on_import(
        graph_services: GraphServices, graph_db: GraphDB, target: str, policy: ImportPolicy) -> None:
    assert policy.approvals_required(["math"]) == 0
    importer = await graph_services.admin_key_for(target)
    response = await import_bundle(graph_services.gateway, importer, math_bundle("elsewhere"))
    assert response.status_code == 201, response.text
    cs = response.json()
    assert (cs["status"], cs["decided_by"], cs["approvals_required"]) == ("applied", "policy", 0)
    rows = await relations(graph_db, target)
    assert titles(rows) == ["Zorn Lemma IS_A Flurb Theorem"] and rows[0]["source"] == "imported"
    assert await audit_actions(graph_services, cs["id"], 2) == ["knowledge_import_applied", "knowledge_import_created"]


@pytest.mark.infra
async def test_bad_bundles_are_refused_with_the_reason_and_nothing_is_written(
        graph_services: GraphServices, graph_db: GraphDB, target: str, policy: ImportPolicy) -> None:
    api = graph_services.gateway
    admin, user = await graph_services.admin_key_for(target), await graph_services.user_key_for(target)
    good = math_bundle("elsewhere")
    tampered = {**good, "relations": [{**good["relations"][0], "confidence": 1.0}]}
    unknown = {**good, "relations": [{**good["relations"][0], "relation": "LOVES"}]}
    dangling = {**good, "entities": good["entities"][:1]}
    empty = {**good, "entities": [], "relations": []}  # an export that matched nothing: no change set to approve
    cases: list[tuple[bytes, int, str, str]] = [
        (b"{not json", 400, "invalid_bundle", "not valid JSON"),
        (b"[]", 400, "invalid_bundle", "JSON object"),
        (json.dumps({**good, "format": "csv"}).encode(), 400, "invalid_bundle", "format"),
        (json.dumps({**good, "version": 9}).encode(), 400, "invalid_bundle", "version"),
        (json.dumps(tampered).encode(), 400, "invalid_bundle", "digest mismatch"),
        (json.dumps({**unknown, "digest": digest_of(unknown)}).encode(), 400, "invalid_bundle", "vocabulary"),
        (json.dumps({**dangling, "digest": digest_of(dangling)}).encode(), 400, "invalid_bundle", "not in entities"),
        (json.dumps({**good, "extra": 1}).encode(), 400, "invalid_bundle", "extra"),
        (json.dumps({**empty, "digest": digest_of(empty)}).encode(), 400, "invalid_bundle", "nothing to import"),
        (json.dumps({**good, "relations": good["relations"] * (policy.max_relations + 1)}).encode(), 413,
         "bundle_too_large", "relations"),
        (b" " * (policy.max_bundle_bytes + 1), 413, "bundle_too_large", "bytes"),
    ]
    for content, status, code, reason in cases:
        response = await import_bundle(api, admin, content)
        assert_openai_error(response, status, code)
        assert reason in response.json()["error"]["message"], response.text
    assert_openai_error(await import_bundle(api, user, good), 403, "insufficient_role")
    assert_openai_error(await api.post("/v1/knowledge/imports", json=good), 401, "invalid_api_key")
    assert_openai_error(await api.post("/v1/knowledge/imports?tenant=someone-else", json=good, headers=bearer(admin)),
                        403, "tenant_forbidden")
    assert_openai_error(await api.post("/v1/knowledge/export", json={"tenant": "someone-else"}, headers=bearer(user)),
                        403, "tenant_forbidden")
    assert_openai_error(await api.post("/v1/knowledge/export", json={"domain": "Not A Domain"}, headers=bearer(user)),
                        400, "invalid_value")
    assert_openai_error(await api.get("/v1/knowledge/imports?status=maybe", headers=bearer(user)), 400,
                        "invalid_value")
    assert (await api.get("/v1/knowledge/imports?status=all", headers=bearer(user))).json()["data"] == []
    assert await relations(graph_db, target) == []
    refused = await graph_services.tap.wait(
        graph_services.bus.topics.audit,
        lambda m: m["action"] == "knowledge_import_refused" and m["tenant_id"] == target, count=len(cases))
    assert sorted(e["details"]["status"] for e in refused) == sorted(c[1] for c in cases)


@pytest.mark.unit
def test_the_policy_in_the_repository_is_valid_and_bad_policies_are_refused(tmp_path: Path) -> None:
    policy = load_policy(REPO / "policy" / "knowledge-imports.yaml")
    assert policy.digest.startswith("sha256:") and policy.max_bundle_bytes >= 1024
    assert policy.approvals_required(["medical", "math"]) == policy.rule("medical").approvers
    assert policy.approvals_required([]) == policy.default.approvers
    for text in ("version: 1\nmax_bundle_bytes: 10\nmax_entities: 1\nmax_relations: 1\n",
                 "version: 1\nmax_bundle_bytes: 4096\nmax_entities: 1\nmax_relations: 1\nsurprise: true\n",
                 "version: 1\nmax_bundle_bytes: 4096\nmax_entities: 1\nmax_relations: 1\n"
                 "domains: {medical: {approvers: 0}}\n", "- not a mapping\n", "version: [1\n"):
        path = tmp_path / "policy.yaml"
        path.write_text(text)
        with pytest.raises(PolicyError, match="not valid"):
            load_policy(path)
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")


@pytest.mark.unit
def test_the_documented_json_schema_is_the_bundle_model() -> None:
    documented = json.loads((REPO / "docs" / "knowledge-bundle.schema.json").read_text())
    assert documented == json_schema()


@pytest.mark.unit
def test_the_digest_covers_the_content_not_its_layout() -> None:
    bundle = math_bundle("elsewhere")
    relaid = json.loads(json.dumps(dict(reversed(list(bundle.items()))), indent=2))  # other key order, whitespace
    assert verify(relaid).digest == bundle["digest"] == digest_of(relaid)
    renamed = {**bundle, "origin": {**bundle["origin"], "tenant": "someone"}}
    with pytest.raises(BundleError, match="digest mismatch"):
        verify(renamed)
    assert verify({**renamed, "digest": digest_of(renamed)}).origin.tenant == "someone"


PROPERTIES = "MATCH ()-[r:REL {tenant: $tenant}]->() RETURN properties(r) AS p"


@pytest.mark.infra
async def test_the_bulk_assert_of_imports_leaves_what_the_single_assert_leaves(
        graph_db: GraphDB, tenant: str, target: str) -> None:
    store, triple = GraphStore(graph_db), Triple(subject="Plinkor", relation="USES", object="Zarnet", confidence=0.6)
    await graph_db.write(bundles_graph.CREATE_ENTITIES, tenant=target, source="extracted", now=0.0, import_id="t",
                         rows=[{"uid": entity_uid(target, normalize(n)), "key": normalize(n), "name": n,
                                "type": "Concept", "domain": "general", "aliases": [], "alias_keys": []}
                               for n in (triple.subject, triple.object)])
    row = {"subject": entity_uid(target, "plinkor"), "object": entity_uid(target, "zarnet"), "type": "USES",
           "confidence": 0.6, "domain": "general"}
    doc = "doc-1@sha256:ab"
    # new, repeated, another origin (an import naming its source document), that import again
    for origin, confidence, imp, document in (("one", 0.6, None, None), ("one", 0.6, None, None),
                                              ("import:kcs-1", 0.8, "kcs-1", doc), ("import:kcs-1", 0.8, "kcs-1", doc)):
        prov = Provenance(tenant, "extracted", origin=origin, import_id=imp, document=document)
        await store.write_triple(triple.model_copy(update={"confidence": confidence}), prov)
        bulk = Provenance(target, "extracted", origin=origin, import_id=imp, document=document)
        rows = [{**row, "confidence": confidence}]
        await graph_db.transaction(lambda tx, rows=rows, p=bulk: store.assert_many_in(tx, rows, p))
        [single] = [r["p"] for r in await graph_db.read(PROPERTIES, tenant=tenant)]
        [many] = [r["p"] for r in await graph_db.read(PROPERTIES, tenant=target)]
        assert set(single) == set(many)
        same = set(single) - {"id", "tenant", "created_at", "asserted_at", "trust"}
        assert {k: single[k] for k in same} == {k: many[k] for k in same}
        assert single["trust"] == pytest.approx(many["trust"], rel=1e-3)
    assert (many["version"], many["assertions"], many["confidence"]) == (2, 2, 0.8)
    assert (many["imports"], many["documents"]) == (["kcs-1"], [doc])  # the provenance, each once


@pytest.mark.infra
async def test_concurrent_approvals_are_counted_one_at_a_time_and_apply_once(
        graph_services: GraphServices, graph_db: GraphDB, target: str, policy: ImportPolicy) -> None:
    api = graph_services.gateway
    origin = Origin.model_validate({"tenant": "elsewhere", "exported_at": "2026-01-01T00:00:00Z",
                                    "exported_by": "test", "graph_version": 0, "selection": {"domain": "legal"}})
    bundle = seal(origin, [BundleEntity(name="Vellum Accord", domain="legal"),
                           BundleEntity(name="Quillmark Statute", domain="legal")],
                  [BundleRelation(subject="Vellum Accord", relation="REGULATES", object="Quillmark Statute",
                                  domain="legal")])
    required = policy.approvals_required(["legal"])
    cs = (await import_bundle(api, await graph_services.admin_key_for(target), bundle)).json()
    assert (cs["status"], cs["approvals_required"]) == ("pending", required)
    keys = [(await person_key(graph_services.keystore, "approver", "admin", [target]))[1] for _ in range(required + 2)]
    responses = await asyncio.gather(*[api.post(f"/v1/knowledge/imports/{cs['id']}/approve", headers=bearer(k))
                                       for k in keys])
    assert [r.status_code for r in responses] == [200] * len(keys)
    final = (await api.get(f"/v1/knowledge/imports/{cs['id']}", headers=bearer(keys[0]))).json()
    assert (final["status"], len(final["approvals"])) == ("applied", required)
    rows = await relations(graph_db, target)
    assert titles(rows) == ["Vellum Accord REGULATES Quillmark Statute"]
    assert (rows[0]["version"], rows[0]["assertions"]) == (1, 1)
    actions = await audit_actions(graph_services, cs["id"], 2 + required + 2)
    assert actions.count("knowledge_import_applied") == 1
    assert actions.count("knowledge_import_already_applied") == 2
