"""The bench's scripted server answers learning's structured calls as graph-ingest and gap-healer read them: every
answer new triples, every term of a (batched) classification a usable classification, so what the bench measures
with learning is learning's work, not a rejection (bench/scenarios.py SCRIPT, bench/llm_server.py reply_for)."""

from __future__ import annotations

from typing import Any

import pytest

from bench.llm_server import reply_for
from bench.scenarios import CLASSIFIED, EXPERT_MODEL, SCRIPT
from gap_healer import core as gap
from graph_ingest import core as ingest
from moe_core.knowledge.graph.ontology import load

pytestmark = pytest.mark.unit

CLASSES = ["Chemical Element", "Drug", "Software"]


def _format(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}


def test_each_extraction_answer_teaches_new_triples() -> None:
    schema = _format("triples", ingest.triples_schema(8))
    first, second = (ingest.sanitise(reply_for(SCRIPT, EXPERT_MODEL, [], schema), 8) for _ in range(2))
    assert len(first) == len(second) == 2
    assert {t.subject for t in first}.isdisjoint(t.subject for t in second)


def test_every_term_of_a_batch_gets_a_usable_classification() -> None:
    terms = ["printing press", "Nairobi", "economic value"]
    messages = gap.batch_messages([(terms[:2], "Compare a printing press and Nairobi"),
                                   (terms[2:], "their economic value")], CLASSES)
    raw = reply_for(SCRIPT, EXPERT_MODEL, messages, _format("classification", gap.batch_schema(terms, CLASSES)))
    answers = gap.split_batch(raw, terms)
    assert sorted(answers) == sorted(terms)
    found = [gap.parse_classification(answers[t], t, CLASSES, 0.5) for t in terms]
    assert [f.name if f else None for f in found] == terms


def test_a_lone_term_gets_its_own_classification() -> None:
    messages = gap.classification_messages("Nairobi", "Compare a printing press and Nairobi", CLASSES)
    raw = reply_for(SCRIPT, EXPERT_MODEL, messages, _format("classification", gap.classification_schema(CLASSES)))
    found = gap.parse_classification(raw, "Nairobi", CLASSES, 0.5)
    assert found is not None and (found.name, found.parent) == ("Nairobi", "Chemical Element")


def test_the_classification_names_a_seeded_class_of_its_domain() -> None:
    classes = {e.name: e.domain for e in load().entities if e.is_class}
    assert classes.get(str(CLASSIFIED["parent"])) == CLASSIFIED["domain"]


def test_other_calls_get_their_models_reply_each_a_new_answer() -> None:
    unstructured = [reply_for(SCRIPT, "judge-model", []) for _ in range(2)]
    assert unstructured[0] != unstructured[1]
    assert len(unstructured[0].split()) == len(unstructured[1].split())
    planned = reply_for(SCRIPT, "planner-model", [], _format("plan", {"type": "object"}))
    assert planned == SCRIPT["replies"]["planner-model"]
