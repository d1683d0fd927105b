"""Learned triples and the write policy, on the real broker, Neo4j and Open Policy Agent: graph-ingest resolves a
triple's domains itself (not from the answer's labels) and asks OPA before writing it; a triple in a protected
domain waits in the quarantine for an admin, every decision is a `policy_decision` audit record with the
policy's version; with OPA unreachable nothing is written and the answer is redelivered until it can be decided.
Memory ingest of a text in a protected domain holds every triple extracted from it, whatever its own domain."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from moe_core.knowledge.graph import GraphDB
from moe_core.policy import Decision, PolicyClient, PolicyUnavailable
from tests.conftest import Scripted
from tests.graph.conftest import GraphServices
from tests.graph.control_plane.test_policy_decisions import policy_version
from tests.graph.graph_ingest.test_learning_journey import extraction_rule, ingest_event, learn
from tests.graph.graph_ingest.test_quarantine_and_api import assert_openai_error, bearer
from tests.graph.helpers import relations, titles
from tests.support.keys import person_key

pytestmark = pytest.mark.infra


def audited(svc: GraphServices, response_id: str, action: str) -> list[dict[str, Any]]:
    return svc.tap.seen(svc.bus.topics.audit, lambda m: m["response_id"] == response_id and m["action"] == action)


async def test_a_learned_medical_triple_waits_for_review_whatever_the_answer_is_labelled(
        graph_services: GraphServices, graph_db: GraphDB, scripted: Scripted, tenant: str) -> None:
    m, api = uuid.uuid4().hex[:8], graph_services.gateway
    medical = (f"Zelvoprin {m}", "TREATS", f"Blorp {m}")
    technical = (f"Frobnik {m}", "PART_OF", f"Kubernetes Cluster {m}")
    scripted.script([extraction_rule(m, [(*medical, 0.9), (*technical, 0.9)])])
    event = ingest_event(tenant, m, knowledge_type="math", source_expert="math")  # the labels say math
    await learn(graph_services, event)
    assert titles(await relations(graph_db, tenant)) == [" ".join(technical)]  # the medical one is not written

    admin = await graph_services.admin_key_for(tenant)
    version = await policy_version(api, admin)
    decided = await graph_services.tap.wait(graph_services.bus.topics.audit, lambda r: r["response_id"] == (
        event.response_id) and r["action"] == "policy_decision", count=2)
    by_subject = {r["subject"]: r for r in decided}
    held, allowed = by_subject[" ".join(medical)], by_subject[" ".join(technical)]
    assert (held["details"]["outcome"], allowed["details"]["outcome"]) == ("held", "allowed")
    assert {r["details"]["policy_version"] for r in decided} == {version}
    # the stage run itself names the policies it decided under (Envelope.versions, on every message it published)
    assert {r["versions"]["policies"]["moe/memory/decision"] for r in decided} == {version}
    assert {r["actor"] for r in decided} == {"service:graph-ingest"}
    assert held["details"]["input"]["resource"]["triple_domains"] == ["medical"]
    assert held["details"]["result"]["protected_domains"] == ["medical"]
    assert allowed["details"]["input"]["resource"]["triple_domains"] == ["technical"]

    [quarantined] = audited(graph_services, event.response_id, "quarantined")
    assert quarantined["details"]["policy"] == "held" and "protected domain medical" in quarantined["reason"]
    listed = (await api.get("/graph/quarantine", headers=bearer(admin))).json()["data"]
    [item] = [i for i in listed if i["subject"] == medical[0]]
    assert item["status"] == "pending" and "protected domain medical" in item["reason"]
    assert (item["approvals"], item["approvals_required"]) == ([], 2)  # medical: four eyes

    # four-eyes by principals: the first approval is kept, not applied; the same principal's second key counts
    # nothing; another principal's approval writes the triple
    first, [_, same_person_token] = await keystore_pair(graph_services, tenant)
    one = await api.post(f"/graph/quarantine/{item['id']}/approve", headers=bearer(first), json={"note": "checked"})
    assert one.status_code == 200, one.text
    assert (one.json()["status"], len(one.json()["approvals"]), one.json()["approvals_required"]) == ("pending", 1, 2)
    assert titles(await relations(graph_db, tenant)) == [" ".join(technical)]
    assert_openai_error(await api.post(f"/graph/quarantine/{item['id']}/approve", headers=bearer(same_person_token)),
                        409, "already_approved")
    two = await api.post(f"/graph/quarantine/{item['id']}/approve", headers=bearer(admin))
    assert two.status_code == 200 and two.json()["status"] == "approved", two.text
    assert [a["principal"] for a in two.json()["approvals"]] == [one.json()["approvals"][0]["principal"],
                                                                  two.json()["approvals"][1]["principal"]]
    assert len({a["principal"] for a in two.json()["approvals"]}) == 2
    assert sorted(titles(await relations(graph_db, tenant))) == sorted([" ".join(technical), " ".join(medical)])
    assert_openai_error(await api.post(f"/graph/quarantine/{item['id']}/approve", headers=bearer(admin)),
                        409, "already_decided")
    # on the record: each approval, the application, and the policy's decisions with its version
    approvals = await graph_services.tap.wait(graph_services.bus.topics.audit, lambda r: r["subject"] == item["id"]
                                              and r["action"] == "quarantine_approval", count=2)
    assert [r["details"]["approvals"] for r in approvals] == [1, 2]
    [applied] = await graph_services.tap.wait(graph_services.bus.topics.audit, lambda r: r["subject"] == item["id"]
                                              and r["action"] == "quarantine_approved")
    assert applied["details"]["approvals_required"] == 2 and applied["details"]["domains"] == ["medical"]
    asked = await graph_services.tap.wait(graph_services.bus.topics.audit, lambda r: r["subject"] == item["id"]
                                          and r["action"] == "policy_decision", count=3)
    assert {r["details"]["policy_version"] for r in asked} == {version}
    assert [r["details"]["outcome"] for r in asked].count("denied") == 1  # the same principal's second key


async def keystore_pair(graph_services: GraphServices, tenant: str) -> tuple[str, list[str]]:
    """Two admin keys of one person of the tenant: (the first's token, [the second's id, its token])."""
    person, token = await person_key(graph_services.keystore, "graph admin p", "admin", [tenant])
    second, second_token = await graph_services.keystore.create("graph-admin-p2", "admin", [tenant],
                                                                principal_id=person)
    return token, [second.id, second_token]


class _Watched(PolicyClient):
    """The service's real client, pointed elsewhere; `failed` is set once a decision could not be had."""

    def __init__(self) -> None:
        super().__init__("http://127.0.0.1:9")  # nothing listens there
        self.failed = asyncio.Event()

    async def decide_many(self, path: str, batch_path: str, inputs: list[dict[str, Any]]) -> list[Decision]:
        try:
            return await super().decide_many(path, batch_path, inputs)
        except PolicyUnavailable:
            self.failed.set()
            raise


async def test_with_the_policy_engine_down_nothing_is_learned_until_it_decides(
        graph_services: GraphServices, graph_db: GraphDB, scripted: Scripted, tenant: str) -> None:
    m = uuid.uuid4().hex[:8]
    scripted.script([extraction_rule(m, [(f"Frobnik {m}", "PART_OF", f"Kubernetes Cluster {m}", 0.9)])])
    learning = graph_services.apps["graph-ingest"].state.graph_ingest.learning
    real, watched = learning.client, _Watched()
    watched.context = real.context  # the protected domains' rules the service sends with every decision
    learning.client = watched
    try:
        event = ingest_event(tenant, m)
        await graph_services.publish(event, "ingest")
        await asyncio.wait_for(watched.failed.wait(), 30)
        assert await relations(graph_db, tenant) == []  # not written unchecked
        assert audited(graph_services, event.response_id, "ingested") == []
        watched.url = real.url  # OPA answers again: the redelivered answer is decided and learned
        await graph_services.tap.wait(graph_services.bus.topics.audit,
                                      lambda r: r["response_id"] == event.response_id and r["action"] == "ingested")
    finally:
        learning.client = real
        await watched.close()
    assert titles(await relations(graph_db, tenant)) == [f"Frobnik {m} PART_OF Kubernetes Cluster {m}"]
    [decision] = audited(graph_services, event.response_id, "policy_decision")
    assert decision["details"]["outcome"] == "allowed" and decision["details"]["policy_version"].startswith("sha256:")


async def test_memory_ingest_of_a_protected_text_holds_every_triple_learned_from_it(
        graph_services: GraphServices, graph_db: GraphDB, scripted: Scripted, tenant: str) -> None:
    m, api = uuid.uuid4().hex[:8], graph_services.gateway
    technical = (f"Frobnik {m}", "PART_OF", f"Kubernetes Cluster {m}")
    scripted.script([extraction_rule(m, [(*technical, 0.9)])])  # a technical triple, from a medical text
    admin = await graph_services.admin_key_for(tenant)
    accepted = await api.post("/v1/memory/ingest", headers=bearer(admin), json={
        "text": f"The clinic runs the patient records {m} on a Kubernetes cluster."})
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    assert (body["review"], body["review_domains"]) == (True, ["medical"])
    [done] = await graph_services.tap.wait(graph_services.bus.topics.audit,
                                           lambda r: r["response_id"] == body["id"] and r["action"] == "ingested")
    assert done["details"]["relations"] == [] and await relations(graph_db, tenant) == []
    [decision] = audited(graph_services, body["id"], "policy_decision")
    resource = decision["details"]["input"]["resource"]
    assert (resource["triple_domains"], resource["document_domains"]) == (["technical"], ["medical"])
    assert decision["details"]["outcome"] == "held"
    listed = (await api.get("/graph/quarantine", headers=bearer(admin))).json()["data"]
    assert [(i["subject"], i["status"]) for i in listed if i["response_id"] == body["id"]] == [(technical[0],
                                                                                                "pending")]


class _DownOnce(PolicyClient):
    """The service's real client; its `nth` request for decisions (one per answer: graph-ingest asks for all of an
    answer's triples at once) finds OPA unreachable (as if it went down mid-answer)."""

    def __init__(self, url: str, nth: int) -> None:
        super().__init__(url)
        self.calls, self.nth, self.failed = 0, nth, asyncio.Event()

    async def decide_many(self, path: str, batch_path: str, inputs: list[dict[str, Any]]) -> list[Decision]:
        self.calls += 1
        if self.calls != self.nth:
            return await super().decide_many(path, batch_path, inputs)
        real, self.url = self.url, "http://127.0.0.1:9"  # nothing listens there
        try:
            return await super().decide_many(path, batch_path, inputs)
        finally:
            self.url = real
            self.failed.set()


async def test_an_answer_redelivered_after_the_policy_engine_failed_is_decided_on_the_same_domains(
        graph_services: GraphServices, graph_db: GraphDB, scripted: Scripted, tenant: str) -> None:
    m = uuid.uuid4().hex[:8]
    first, second = (f"Frobnik {m}", "PART_OF", f"Kubernetes Cluster {m}"), (f"Glimmer {m}", "PART_OF", f"Zorgon {m}")
    scripted.script([extraction_rule(m, [(*first, 0.9), (*second, 0.9)])])
    learning = graph_services.apps["graph-ingest"].state.graph_ingest.learning
    real, flaky = learning.client, _DownOnce(learning.client.url, nth=1)
    flaky.context = real.context  # the protected domains' rules the service sends with every decision
    learning.client = flaky
    try:
        event = ingest_event(tenant, m)  # labelled medical: the entities it writes are filed under medical
        await graph_services.publish(event, "ingest")
        await asyncio.wait_for(flaky.failed.wait(), 30)  # OPA gone when the answer's triples are decided
        [done] = await graph_services.tap.wait(graph_services.bus.topics.audit, lambda r: r["response_id"] == (
            event.response_id) and r["action"] == "ingested")  # redelivered and decided
    finally:
        learning.client = real
        await flaky.close()
    # the answer's triples are decided together before any is written, so the first attempt wrote nothing; the
    # redelivery is decided on the domains the first one resolved (kept per answer), and nothing looks medical
    assert audited(graph_services, event.response_id, "quarantined") == []
    assert len(done["details"]["relations"]) == 2
    assert sorted(titles(await relations(graph_db, tenant))) == sorted([" ".join(first), " ".join(second)])
