"""Factual and procedural knowledge, as the original tells them apart (knowledge_type on moe.ingest): an
answer to a procedural question is extracted as requirement chains, and a procedural question gets them back
as the [Procedural Requirements] block; a factual question about the same thing gets facts first."""

from __future__ import annotations

import json
import uuid

import pytest

from moe_core.knowledge.graph import GraphDB
from tests.conftest import Scripted
from tests.graph.conftest import GraphServices
from tests.graph.graph_ingest.test_learning_journey import ask, ingest_event, learn
from tests.graph.helpers import relations, titles

pytestmark = pytest.mark.infra
PROCEDURAL = "procedural requirements"  # a phrase of the procedural extraction prompt only


async def test_a_procedural_answer_becomes_requirements_and_a_procedural_question_gets_them_first(
        graph_services: GraphServices, graph_db: GraphDB, scripted: Scripted, tenant: str) -> None:
    marker = uuid.uuid4().hex[:8]
    action = f"Renew Glorbian Permit {marker}"
    reply = {"triples": [
        {"subject": action, "relation": "REQUIRES", "object": f"Glorbian Birth Record {marker}", "confidence": 0.9},
        {"subject": action, "relation": "PERFORMED_AT", "object": f"Glorbian Permit Office {marker}",
         "confidence": 0.9},
        {"subject": action, "relation": "TREATS", "object": "Headache", "confidence": 0.9},  # not procedural
    ]}
    scripted.script([{"model": "expert-model", "system_contains": PROCEDURAL, "contains": marker,
                      "reply": json.dumps(reply)}])
    event = ingest_event(tenant, marker, question=f"How do I renew my glorbian permit {marker}?",
                         answer="Bring your birth record to the permit office.", knowledge_type="procedural",
                         source_expert="general")
    await learn(graph_services, event)
    calls = [c for c in scripted.calls() if marker in str(c["messages"])]
    assert len(calls) == 1 and PROCEDURAL in calls[0]["messages"][0]["content"]  # the procedural strategy
    schema = json.dumps(calls[0]["body"].get("response_format") or {})
    assert "PERFORMED_AT" in schema and "TREATS" not in schema
    assert titles(await relations(graph_db, tenant)) == [
        f"{action} PERFORMED_AT Glorbian Permit Office {marker}", f"{action} REQUIRES Glorbian Birth Record {marker}"]

    procedural = await ask(graph_services, tenant, f"How do I renew glorbian permit {marker}?")
    assert procedural["data"]["knowledge_type"] == "procedural"
    lines = procedural["content"].splitlines()
    assert lines[0].startswith("[Procedural Requirements]")
    assert lines[1] in (f"- {action} -> REQUIRES Glorbian Birth Record {marker}",
                        f"- {action} -> PERFORMED_AT Glorbian Permit Office {marker}")

    factual = await ask(graph_services, tenant, f"Who issues the renew glorbian permit {marker}?")
    assert factual["data"]["knowledge_type"] == "factual"
    assert "[Procedural Requirements]" not in factual["content"]
    assert factual["content"].startswith("Knowledge graph facts")


async def test_a_factual_answer_is_extracted_as_facts(
        graph_services: GraphServices, graph_db: GraphDB, scripted: Scripted, tenant: str) -> None:
    marker = uuid.uuid4().hex[:8]
    reply = {"triples": [{"subject": f"Zintrol {marker}", "relation": "PART_OF", "object": f"Glorp Toolkit {marker}",
                          "confidence": 0.9}]}  # no protected domain (those wait for review: test_learned_policy)
    scripted.script([{"model": "expert-model", "system_contains": "factual triples", "contains": marker,
                      "reply": json.dumps(reply)}])
    await learn(graph_services, ingest_event(tenant, marker, knowledge_type="factual"))
    assert titles(await relations(graph_db, tenant)) == [f"Zintrol {marker} PART_OF Glorp Toolkit {marker}"]
