"""Healing and linting on the real broker and Neo4j: an unknown term becomes a classified entity
(daemon and one-shot mode); decay deletes exactly the relations the rule names, each with an audit
event; contradictions keep the more trusted side; orphans are removed."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from gap_healer.__main__ import _publish_lint
from gap_healer.once import run_once
from gap_healer.settings import GapHealerSettings
from moe_core.contracts import LintRequest, OntologyGap, deadline_in
from moe_core.knowledge.graph import GraphDB, GraphStore, Provenance, Triple
from moe_core.knowledge.graph.feedback import apply_feedback
from moe_core.knowledge.graph.trust import DAY_S, TrustPolicy
from moe_core.runtime.kafka_clients import client_kwargs
from tests.conftest import Scripted
from tests.graph.conftest import GraphServices, _common
from tests.graph.graph_ingest.test_learning_journey import ask
from tests.graph.helpers import purge, relations, titles
from tests.support.namespaces import new_namespace

pytestmark = pytest.mark.infra
CLASSIFY = "You classify a term"  # a phrase of gap-healer's system prompt
BACKDATE = "MATCH ()-[r:REL {id: $id}]->() SET r.asserted_at = r.asserted_at - $seconds"
ENTITY = "MATCH (e:Entity {tenant: $t, key: $key}) RETURN e.name AS name, e.source AS source, e.aliases AS aliases"


def classify_rule(term: str, name: str, parent: str, domain: str = "medical", **kw: Any) -> dict[str, Any]:
    reply = {"is_entity": True, "name": name, "parent": parent, "domain": domain, "aliases": [f"{name}-X"],
             "confidence": 0.9, **kw}
    return {"model": "expert-model", "system_contains": CLASSIFY, "contains": f"Term: {term}",
            "reply": json.dumps(reply)}


async def test_an_unknown_term_is_reported_healed_and_then_known(
        graph_services: GraphServices, graph_db: GraphDB, scripted: Scripted, tenant: str) -> None:
    term = f"florbex{uuid.uuid4().hex[:6]}"
    # a technical class: a medical one waits for review (tests/graph/gap_healer/test_gap_review.py)
    scripted.script([classify_rule(term, term.capitalize(), "Framework", "technical")])
    first = await ask(graph_services, tenant, f"Does {term} work with Django?")
    assert first["data"]["unknown_terms"] == [term]
    [gap] = await graph_services.tap.wait(graph_services.bus.topics.ontology_gaps,
                                          lambda m: m["tenant_id"] == tenant)
    assert gap["term"] == term and term in gap["context"]
    [healed] = await graph_services.tap.wait(graph_services.bus.topics.audit, lambda m: m["tenant_id"] == tenant
                                             and m["action"] == "gap_healed")
    assert healed["actor"] == "gap-healer" and healed["reason"] == f"{term.capitalize()} IS_A Framework"
    [row] = await relations(graph_db, tenant)
    assert (row["subject"], row["type"], row["object"], row["source"]) == (
        term.capitalize(), "IS_A", "Framework", "gap_healer")
    [entity] = await graph_db.read(ENTITY, t=tenant, key=term)
    assert (entity["source"], entity["aliases"]) == ("gap_healer", [f"{term.capitalize()}-X"])
    again = await ask(graph_services, tenant, f"Does {term} work with Django?")
    assert again["data"]["unknown_terms"] == []
    assert f"{term.capitalize()} IS_A Framework" in again["content"]
    assert "Django USES Python" in again["content"]


async def test_the_unknown_terms_of_one_question_are_classified_in_one_call(
        graph_services: GraphServices, graph_db: GraphDB, scripted: Scripted, tenant: str) -> None:
    first, second = f"florbex{uuid.uuid4().hex[:6]}", f"drazzle{uuid.uuid4().hex[:6]}"

    def entry(name: str, parent: str) -> dict[str, Any]:
        return {"is_entity": True, "name": name, "parent": parent, "domain": "technical", "confidence": 0.9}

    # keyed by term, in another order than asked: each term gets its own classification
    reply = {second: entry(second.capitalize(), "Protocol"), first: entry(first.capitalize(), "Framework")}
    scripted.script([{"model": "expert-model", "system_contains": "You classify each term",
                      "contains": f"- {first}\n- {second}", "reply": json.dumps(reply)}])
    # the question's generic words are no terms (graph_rag.generic): 'formed' and 'threatens' are not classified
    result = await ask(graph_services, tenant, f"{first} and {second}: how each one formed, and what threatens it?")
    assert result["data"]["unknown_terms"] == [first, second]
    healed = await graph_services.tap.wait(graph_services.bus.topics.audit, lambda m: m["tenant_id"] == tenant
                                           and m["action"] == "gap_healed", count=2)
    assert sorted(h["reason"] for h in healed) == sorted([f"{first.capitalize()} IS_A Framework",
                                                          f"{second.capitalize()} IS_A Protocol"])
    calls = [c for c in scripted.calls() if "You classify" in c["messages"][0]["content"]]
    assert len(calls) == 1  # one model call for both terms (the second gap reads its remembered classification)
    assert titles(await relations(graph_db, tenant)) == sorted([f"{first.capitalize()} IS_A Framework",
                                                                f"{second.capitalize()} IS_A Protocol"])


async def test_an_answer_of_no_use_for_a_batch_rejects_its_terms_without_asking_again(
        graph_services: GraphServices, scripted: Scripted, tenant: str) -> None:
    first, second = f"quibrel{uuid.uuid4().hex[:6]}", f"snorvat{uuid.uuid4().hex[:6]}"
    scripted.script([], default_reply="Both are probably frameworks.")  # not the keyed JSON
    result = await ask(graph_services, tenant, f"{first} and {second}?")
    assert result["data"]["unknown_terms"] == [first, second]
    rejected = await graph_services.tap.wait(graph_services.bus.topics.audit, lambda m: m["tenant_id"] == tenant
                                             and m["action"] == "gap_rejected", count=2)
    assert sorted(r["subject"] for r in rejected) == sorted([first, second])
    assert len([c for c in scripted.calls() if "You classify" in c["messages"][0]["content"]]) == 1


async def test_the_one_shot_mode_drains_waiting_gaps_and_commits(
        infra: dict[str, str], neo4j_url: str, graph_db: GraphDB, scripted: Scripted, tenant: str) -> None:
    namespace = new_namespace("g1")  # no daemon consumes this namespace
    settings = GapHealerSettings(**_common(infra, namespace, neo4j_url, scripted.url))
    terms = [f"glimmox{uuid.uuid4().hex[:5]}", f"drazzle{uuid.uuid4().hex[:5]}"]
    scripted.script([classify_rule(terms[0], terms[0], "Protocol", "technical"),
                     classify_rule(terms[1], terms[1], "Programming Language", "technical")])
    topic = f"{namespace}.ontology-gaps.v1"
    from moe_core.contracts import Topics
    from moe_core.runtime.bus import ensure_topics

    await ensure_topics(infra["kafka"], Topics.for_namespace(namespace).all(), 2)
    producer = AIOKafkaProducer(**client_kwargs(bootstrap=infra["kafka"]))
    await producer.start()
    try:
        for term in terms:
            gap = OntologyGap(response_id=f"r-{term}", tenant_id=tenant, deadline_at=deadline_in(60), term=term,
                              context=f"what is {term}")
            await producer.send_and_wait(topic, gap.model_dump_json().encode(), key=gap.response_id.encode())
        await producer.send_and_wait(topic, b'{"not": "a gap"}', key=b"r-bad")
    finally:
        await producer.stop()
    done = await run_once(settings)
    assert (done.gaps, done.lints, done.dead_letters) == (2, 0, 1)
    assert titles(await relations(graph_db, tenant)) == [f"{terms[1]} IS_A Programming Language",
                                                          f"{terms[0]} IS_A Protocol"]
    again = await run_once(GapHealerSettings(**_common(infra, namespace, neo4j_url, scripted.url)))
    assert (again.gaps, again.lints, again.dead_letters) == (0, 0, 0)  # committed: nothing is read twice


async def _lint(svc: GraphServices, tenant: str, checks: list[str]) -> list[dict[str, Any]]:
    request = LintRequest(response_id=f"lint-{uuid.uuid4().hex[:10]}", tenant_id=tenant,
                          deadline_at=deadline_in(60), checks=checks)  # type: ignore[arg-type]
    await svc.publish(request, "linting")
    await svc.tap.wait(svc.bus.topics.audit, lambda m: m["response_id"] == request.response_id
                       and m["action"] == "lint_completed")
    return svc.tap.seen(svc.bus.topics.audit, lambda m: m["response_id"] == request.response_id
                        and m["action"] != "lint_completed")


async def _version_n(db: GraphDB, tenant: str) -> int:
    rows = await db.read("OPTIONAL MATCH (v:GraphVersion {tenant: $tenant}) RETURN coalesce(v.n, 0) AS n",
                         tenant=tenant)
    return int(rows[0]["n"])


async def test_decay_deletes_exactly_the_relations_the_rule_names_each_with_an_audit_event(
        graph_services: GraphServices, graph_db: GraphDB, tenant: str) -> None:
    store, other = GraphStore(graph_db), f"{tenant}-keep"

    async def write(subject: str, relation: str, obj: str, confidence: float, source: str = "extracted",
                    origin: str = "a1", owner: str | None = None, age_days: float = 0) -> str:
        written = await store.write_triple(Triple(subject=subject, relation=relation, object=obj,
                                                  confidence=confidence),
                                           Provenance(tenant=owner or tenant, source=source, origin=origin))  # type: ignore[arg-type]
        if age_days:
            await graph_db.write(BACKDATE, id=written.id, seconds=age_days * DAY_S)
        return written.id

    try:
        decayed = await write("Oldmycin", "TREATS", "Cough", 0.8, age_days=400)  # 0.48 * 0.3 = 0.144
        healer = await write("Oldmycin", "IS_A", "Antibiotic", 0.3, source="gap_healer", age_days=100)  # 0.196
        weak = await write("Oldmycin", "AFFECTS", "Liver", 0.2)  # 0.12, fresh but below the floor
        verified = await write("Oldmycin", "CAUSES", "Nausea", 0.8, age_days=400)
        await apply_feedback(graph_db, TrustPolicy(), tenant, [verified], 5, "fb")  # 0.216, and verified
        twice = await write("Oldmycin", "TREATS", "Fever", 0.8, origin="a1")
        await write("Oldmycin", "TREATS", "Fever", 0.8, origin="a2")
        await graph_db.write(BACKDATE, id=twice, seconds=400 * DAY_S)  # 0.144, but asserted twice
        recent = await write("Oldmycin", "TREATS", "Headache", 0.8)  # 0.48
        foreign = await write("Oldmycin", "TREATS", "Cough", 0.8, owner=other, age_days=400)  # another tenant

        before = await _version_n(graph_db, tenant)
        events = await _lint(graph_services, tenant, ["decay"])
        assert sorted(e["subject"] for e in events) == sorted([decayed, healer, weak])
        # each deletion moved its tenant's version: graph-rag's cached facts and graph-ingest's count read again
        # (at least: a trust recompute running meanwhile moves every tenant's by one)
        assert await _version_n(graph_db, tenant) >= before + 3
        assert {e["action"] for e in events} == {"relation_deleted"}
        assert all(e["details"]["check"] == "decay" and e["details"]["trust"] < 0.2 for e in events)
        assert all(e["reason"].startswith("decay: trust") for e in events)
        left = {r["id"] for r in await relations(graph_db, tenant)}
        assert left == {verified, twice, recent}
        assert [r["id"] for r in await relations(graph_db, other)] == [foreign]
        assert await _lint(graph_services, tenant, ["decay"]) == []  # nothing more to delete
    finally:
        await purge(graph_db, other)


async def test_contradictions_keep_the_trusted_side_and_orphans_go(
        graph_services: GraphServices, graph_db: GraphDB, tenant: str) -> None:
    store = GraphStore(graph_db)
    prov = Provenance(tenant=tenant, source="extracted", origin="a1")
    strong = await store.write_triple(Triple(subject="Grobnar", relation="TREATS", object="Headache",
                                             confidence=0.9), prov)
    weak = await store.write_triple(Triple(subject="Grobnar", relation="CAUSES", object="Headache",
                                           confidence=0.5), prov)
    lonely = await store.write_triple(Triple(subject="Snerk", relation="USES", object="Wibble", confidence=0.1), prov)
    events = await _lint(graph_services, tenant, ["contradictions", "decay", "orphans"])
    deleted = {(e["action"], e["details"]["check"]): e for e in events}
    assert deleted[("relation_deleted", "contradictions")]["subject"] == weak.id
    assert deleted[("relation_deleted", "contradictions")]["details"]["kept"]["id"] == strong.id
    assert deleted[("relation_deleted", "decay")]["subject"] == lonely.id  # trust 0.06
    orphans = sorted(e["details"]["name"] for e in events if e["action"] == "entity_deleted")
    assert orphans == ["Snerk", "Wibble"]  # left without relations by the decay deletion
    assert titles(await relations(graph_db, tenant)) == ["Grobnar TREATS Headache"]
    assert len(events) == 4


async def test_the_lint_command_publishes_a_request_the_daemon_runs(
        graph_services: GraphServices, graph_db: GraphDB, infra: dict[str, str], neo4j_url: str,
        scripted: Scripted, tenant: str) -> None:
    store = GraphStore(graph_db)
    await store.write_triple(Triple(subject="Fizzwick", relation="USES", object="Wobblet", confidence=0.1),
                             Provenance(tenant=tenant, source="extracted", origin="a1"))
    settings = GapHealerSettings(**_common(infra, graph_services.namespace, neo4j_url, scripted.url))
    rid = await _publish_lint(settings, tenant, ["decay", "orphans"])
    await graph_services.tap.wait(graph_services.bus.topics.audit, lambda m: m["response_id"] == rid
                                  and m["action"] == "lint_completed")
    actions = sorted(m["action"] for m in graph_services.tap.seen(graph_services.bus.topics.audit,
                                                                   lambda m: m["response_id"] == rid))
    assert actions == ["entity_deleted", "entity_deleted", "lint_completed", "relation_deleted"]
    assert await relations(graph_db, tenant) == []
