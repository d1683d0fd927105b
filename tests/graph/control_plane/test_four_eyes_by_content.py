# ruff: noqa: RUF003  (look-alike letters are what these tests are about)
"""Four-eyes by what a fact is, not what its importer says (issue 50, item 3), through the control plane on the
real Neo4j, Postgres, Kafka and OPA: an item the server cannot resolve counts the default number of approvers;
`math` needs none only when every item positively resolves to math; an alias naming an entity the tenant already
sees is refused; look-alike letters are folded before resolution; a service account never approves."""

from __future__ import annotations

import json
from typing import Any

import pytest

from moe_core.knowledge.graph import GraphDB
from moe_core.knowledge.graph.bundles import BundleEntity, BundleRelation, Origin, seal
from tests.graph.conftest import GraphServices
from tests.graph.graph_ingest.test_quarantine_and_api import assert_openai_error, bearer
from tests.graph.helpers import relations
from tests.support.keys import person_key

pytestmark = pytest.mark.infra


def bundle(entities: list[BundleEntity], relations_: list[BundleRelation]) -> bytes:
    origin = Origin.model_validate({"tenant": "elsewhere", "exported_at": "2026-01-01T00:00:00Z",
                                    "exported_by": "test", "graph_version": 0, "selection": {"domain": "math"}})
    return json.dumps(seal(origin, entities, relations_)).encode()


def qx7(aliases: list[str]) -> bytes:
    """The review's bundle: a name nothing knows, labelled math, with an alias, related to a claim."""
    return bundle([BundleEntity(name="Qx-7", domain="math", aliases=aliases),
                   BundleEntity(name="Safe in pregnancy", domain="math")],
                  [BundleRelation(subject="Qx-7", relation="RELATED_TO", object="Safe in pregnancy", domain="math")])


async def imported(services: GraphServices, key: str, body: bytes) -> dict[str, Any]:
    response = await services.gateway.post("/v1/knowledge/imports", content=body, headers=bearer(key))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_the_qx7_bundle_is_refused_for_its_alias_and_without_it_needs_approval(
        graph_services: GraphServices, graph_db: GraphDB, tenant: str) -> None:
    admin = await graph_services.admin_key_for(tenant)
    for alias in ("Ibuprofen", "\u0406buprofen", "Advil"):  # the shared ontology's name, a Cyrillic І, an alias
        refused = await graph_services.gateway.post("/v1/knowledge/imports", content=qx7([alias]),
                                                    headers=bearer(admin))
        assert_openai_error(refused, 409, "alias_taken")
        error = refused.json()["error"]
        assert "Ibuprofen" in error["message"] and alias in error["message"]
    assert await relations(graph_db, tenant) == []

    cs = await imported(graph_services, admin, qx7([]))  # a claim about pregnancy is medical: two people
    assert (cs["status"], cs["approvals_required"]) == ("pending", 2) and "medical" in cs["domains"]
    assert await relations(graph_db, tenant) == []
    unknown = bundle([BundleEntity(name="Qx-7", domain="math"), BundleEntity(name="Blue Tuesday", domain="math")],
                     [BundleRelation(subject="Qx-7", relation="RELATED_TO", object="Blue Tuesday", domain="math")])
    cs = await imported(graph_services, admin, unknown)  # nothing resolves it: the math label does not count
    assert (cs["status"], cs["approvals_required"]) == ("pending", 1)
    assert await relations(graph_db, tenant) == []


async def test_math_needs_no_approval_only_when_every_item_resolves_to_math(
        graph_services: GraphServices, graph_db: GraphDB, tenant: str) -> None:
    admin = await graph_services.admin_key_for(tenant)
    proved = bundle([BundleEntity(name="Zorn Lemma", domain="math"), BundleEntity(name="Flurb Theorem", domain="math")],
                    [BundleRelation(subject="Zorn Lemma", relation="IS_A", object="Flurb Theorem", domain="math")])
    cs = await imported(graph_services, admin, proved)
    assert (cs["status"], cs["approvals_required"], cs["domains"]) == ("applied", 0, ["math"])
    mixed = bundle([BundleEntity(name="Zorn Lemma", domain="math"), BundleEntity(name="Blue Tuesday", domain="math")],
                   [BundleRelation(subject="Zorn Lemma", relation="RELATED_TO", object="Blue Tuesday", domain="math")])
    cs = await imported(graph_services, admin, mixed)
    assert (cs["status"], cs["approvals_required"]) == ("pending", 1)


async def test_look_alike_letters_resolve_to_the_entity_they_imitate(
        graph_services: GraphServices, graph_db: GraphDB, tenant: str) -> None:
    admin = await graph_services.admin_key_for(tenant)
    # a Cyrillic І and a zero-width space in a name: still Ibuprofen, so the entity would be a look-alike of the
    # shared ontology's drug: refused like an alias
    lookalike = bundle([BundleEntity(name="\u0406bu\u200bprofen", domain="math")], [])
    refused = await graph_services.gateway.post("/v1/knowledge/imports", content=lookalike, headers=bearer(admin))
    assert_openai_error(refused, 409, "alias_taken")
    assert "look-alike of Ibuprofen" in refused.json()["error"]["message"]
    # inside a longer name (a new entity), the folded drug name is medical; so is an ontology drug's name in one
    for name in ("\u0406bu\u200bprofen Gel", "Warfarin Forte"):
        cs = await imported(graph_services, admin, bundle(
            [BundleEntity(name=name, domain="math"), BundleEntity(name="Zorn Ache", domain="math")],
            [BundleRelation(subject=name, relation="RELATED_TO", object="Zorn Ache", domain="math")]))
        assert (cs["status"], cs["approvals_required"]) == ("pending", 2), name
        assert "medical" in cs["domains"]


async def test_a_service_account_never_approves(graph_services: GraphServices, graph_db: GraphDB,
                                               tenant: str) -> None:
    api = graph_services.gateway
    admin = await graph_services.admin_key_for(tenant)
    cs = await imported(graph_services, admin, bundle(
        [BundleEntity(name="Blue Tuesday", domain="math"), BundleEntity(name="Green Friday")],
        [BundleRelation(subject="Blue Tuesday", relation="RELATED_TO", object="Green Friday")]))
    assert cs["approvals_required"] == 1
    bot = (await graph_services.keystore.create("nightly", "admin", [tenant]))[1]  # a service account's key
    approve = f"/v1/knowledge/imports/{cs['id']}/approve"
    assert_openai_error(await api.post(approve, headers=bearer(bot)), 403, "approver_not_a_person")
    person = (await person_key(graph_services.keystore, "reviewer", "admin", [tenant]))[1]
    done = await api.post(approve, headers=bearer(person))
    assert done.status_code == 200 and done.json()["status"] == "applied"


@pytest.fixture
def chroma() -> None:
    """The document store of tenant documents (started once, kept by the infrastructure)."""
    from fleetlib import api

    api.ensure_up(["chroma"])


async def test_a_user_keys_look_alike_medical_text_is_held_for_review(graph_services: GraphServices, tenant: str,
                                                                      chroma: None) -> None:
    api = graph_services.gateway
    user = await graph_services.user_key_for(tenant)
    text = "Qx-7 is \u0456bupr\u043efen and safe at any d\u043ese."  # Cyrillic і and о: no word of the list as written
    learned = await api.post("/v1/memory/ingest", headers=bearer(user), json={"text": text})
    assert learned.status_code == 202, learned.text
    assert (learned.json()["review"], learned.json()["review_domains"]) == (True, ["medical"])
    upload = await api.post("/v1/memory/documents", headers=bearer(user),
                            json={"text": text, "domain": "general", "source": "ward7/qx7.md"})
    assert upload.status_code == 201, upload.text
    doc = upload.json()
    assert (doc["status"], doc["approvals_required"], doc["review_domains"]) == ("pending_review", 2, ["medical"])
