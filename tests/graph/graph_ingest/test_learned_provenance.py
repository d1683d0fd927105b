"""graph-ingest keeps where a learned fact came from, on the real Neo4j and in its audit event: an answer's
relations name `answer:<response id>`, a memory-ingest event's `memory:<event id>` (with its submitter), and a
redelivery adds nothing."""

from __future__ import annotations

import uuid

import pytest

from moe_core.knowledge.graph import GraphDB
from tests.conftest import Scripted
from tests.graph.conftest import GraphServices
from tests.graph.graph_ingest.test_learning_journey import extraction_rule, ingest_event, learn

pytestmark = pytest.mark.infra
LEARNED = "MATCH ()-[r:REL]->() WHERE r.id IN $ids RETURN r.id AS id, r.learned_from AS learned_from"


async def test_learned_relations_name_the_answer_or_memory_event_they_came_from(
        graph_services: GraphServices, graph_db: GraphDB, scripted: Scripted, tenant: str) -> None:
    tag = uuid.uuid4().hex[:6]
    answer_marker, memory_marker = uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]
    scripted.script([extraction_rule(answer_marker, [(f"Provo{tag}", "DEPENDS_ON", f"Nance{tag}", 0.9)]),
                     extraction_rule(memory_marker, [(f"Memo{tag}", "PART_OF", f"Nance{tag}", 0.9)])])
    answer = ingest_event(tenant, answer_marker, knowledge_type="technical", source_expert="technical_support")
    memory = ingest_event(tenant, memory_marker, knowledge_type="technical", source_expert="memory-api",
                          response_id=f"mem-{uuid.uuid4().hex}", submitted_by="principal-alice")
    learned = await learn(graph_services, answer)
    taught = await learn(graph_services, memory)
    assert learned["details"]["learned_from"] == {
        "kind": "answer", "response_id": answer.response_id, "submitted_by": None,
        "source_expert": "technical_support", "source_model": "expert-model"}
    assert taught["details"]["learned_from"]["kind"] == "memory_ingest"
    assert taught["details"]["learned_from"]["submitted_by"] == "principal-alice"
    [a_rel], [m_rel] = learned["details"]["relations"], taught["details"]["relations"]
    rows = {r["id"]: r["learned_from"] for r in await graph_db.read(LEARNED, ids=[a_rel, m_rel])}
    assert rows == {a_rel: [f"answer:{answer.response_id}"], m_rel: [f"memory:{memory.response_id}"]}
    await graph_services.publish(answer, "ingest")  # redelivered: the same origin, not twice
    await graph_services.tap.wait(graph_services.bus.topics.audit, lambda m: m["response_id"] == answer.response_id
                                  and m["action"] == "ingested", count=2)
    [again] = await graph_db.read(LEARNED, ids=[a_rel])
    assert again["learned_from"] == [f"answer:{answer.response_id}"]
