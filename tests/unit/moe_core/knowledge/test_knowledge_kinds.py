"""Factual or procedural (moe_core.knowledge.kinds): the merger's tag, graph-ingest's extraction strategy, graph-rag's
procedural requirements block."""

from __future__ import annotations

import json

import pytest

from graph_ingest import core as ingest
from graph_rag import core as rag
from merger import learning
from moe_core.contracts import IngestEvent, deadline_in
from moe_core.knowledge.kinds import question_kind, strategy

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("question", [
    "How do I renew my passport?", "What do I need to register a car?", "Steps to install Kafka on Debian",
    "Where can I apply for a building permit?", "what happens if I miss the deadline", "How to set up SSH keys",
])
def test_procedural_questions(question: str) -> None:
    assert question_kind(question) == "procedural"


@pytest.mark.parametrize("question", [
    "What is the capital of France?", "Who wrote Hamlet?", "Does ibuprofen treat headaches?", "Define entropy", "",
])
def test_factual_questions(question: str) -> None:
    assert question_kind(question) == "factual"


def test_the_strategy_is_the_knowledge_type_else_the_question_decides() -> None:
    assert strategy("procedural", "What is X?") == "procedural"
    assert strategy("factual", "How do I renew X?") == "factual"
    assert strategy("medical", "How do I renew X?") == "procedural"  # a domain label: the question decides
    assert strategy("general", "What is X?") == "factual"


def _event(**kw: object) -> IngestEvent:
    fields: dict[str, object] = {"response_id": "r", "tenant_id": "acme", "deadline_at": deadline_in(10),
                                 "question": "q", "answer": "a", **kw}
    return IngestEvent.model_validate(fields)


def test_the_procedural_strategy_asks_for_requirements_and_keeps_only_their_relations() -> None:
    event = _event(question="How do I renew a permit?", knowledge_type="procedural")
    system = ingest.extraction_messages(event, 8)[0]["content"]
    assert "procedural requirements" in system and "PERFORMED_AT" in system and "TREATS" not in system
    assert all(relation in system for relation in ingest.relations_for("procedural"))  # each named with its use
    enum = ingest.triples_schema(8, "procedural")["properties"]["triples"]["items"]["properties"]["relation"]["enum"]
    assert "REQUIRES" in enum and "TREATS" not in enum
    raw = json.dumps({"triples": [{"subject": "Renew permit", "relation": "REQUIRES", "object": "ID card"},
                                  {"subject": "Aspirin", "relation": "TREATS", "object": "Headache"}]})
    assert [t.relation for t in ingest.sanitise(raw, 8, "procedural")] == ["REQUIRES"]
    assert [t.relation for t in ingest.sanitise(raw, 8)] == ["REQUIRES", "TREATS"]  # factual: the whole vocabulary
    factual = ingest.extraction_messages(_event(knowledge_type="medical"), 8)[0]["content"]
    assert "factual triples" in factual


def test_the_merger_tags_an_answer_to_a_procedural_question() -> None:
    assert learning.knowledge_type("legal_advisor", question="How do I register a company?") == "procedural"
    assert learning.knowledge_type("legal_advisor", question="What is a GmbH?") == "legal"
    assert learning.knowledge_type("precision", "tool", "How do I compute this?") == "precision"
    assert learning.knowledge_type("general", question="Translate 'room number 101' into German.") == "language"
    assert learning.knowledge_type("general", question="Could you translate this letter to French?") == "language"
    assert learning.knowledge_type("general", question="Why is translation hard for a machine?") == "general"
    assert learning.knowledge_type("science", question="What does a ribosome translate into protein?") == "science"


def test_a_procedural_question_gets_the_procedural_requirements_block_first() -> None:
    chains = [{"names": ["Renew permit", "ID card"], "types": ["REQUIRES"], "ids": ["r1"], "trusts": [0.5]}]
    facts = [{"id": "f1", "subject": "Permit", "type": "IS_A", "object": "Document", "trust": 0.9}]
    text = rag.content(facts, chains, [], procedural=True)
    assert text.splitlines()[:2] == [
        "[Procedural Requirements] (action -> what it requires / where it happens; follow them in order):",
        "- Renew permit -> REQUIRES ID card"]
    plain = rag.content(facts, chains, [])
    assert plain.startswith("Knowledge graph facts") and "[Procedural Requirements]" not in plain
    assert rag.content(facts, [], [], procedural=True).startswith("Knowledge graph facts")
