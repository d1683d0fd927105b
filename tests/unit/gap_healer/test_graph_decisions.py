"""Pure decisions of the graph services: blast radius, conflicts, lint, extraction output, gap
classification, graph-rag ranking and text, and the planner's graph task."""

from __future__ import annotations

import json

import pytest

from gap_healer.core import (
    batch_messages,
    batch_schema,
    classification_messages,
    context_window,
    contradiction_loser,
    decayed,
    parse_classification,
    split_batch,
    terms_window,
)
from graph_ingest.core import conflict_decision, domain_of, sanitise, skip_reason, triples_schema
from graph_ingest.settings import GraphIngestSettings
from graph_rag import core as rag
from moe_core.contracts import ChatMessage, ChatRequest, IngestEvent, Plan, PlannedTask, deadline_in
from moe_core.knowledge.graph.quarantine import blast_radius_exceeded
from moe_core.knowledge.graph.trust import DAY_S, TrustPolicy
from moe_core.knowledge.graph.vocab import RELATION_TYPES, SHARED_TENANT
from planner.graph_tasks import add_graph_task
from planner.settings import PlannerSettings

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("reach, threshold, quarantined", [
    (31, 30, True), (30, 30, False), (0, 30, False), (1, 0, True), (0, 0, False), (10_000, -1, False)])
def test_blast_radius_decision(reach: int, threshold: int, quarantined: bool) -> None:
    assert blast_radius_exceeded(reach, threshold) is quarantined


def test_a_conflict_with_curated_or_verified_knowledge_is_refused() -> None:
    assert conflict_decision([]) == "write"
    assert conflict_decision([{"source": "extracted", "verified": False}]) == "write"
    assert conflict_decision([{"source": "ontology", "verified": False}]) == "reject"
    assert conflict_decision([{"source": "extracted", "verified": True}]) == "reject"


def test_the_weaker_side_of_a_contradiction_goes_and_the_ontology_stays() -> None:
    curated = {"id": "o", "source": "ontology", "verified": False, "trust": 1.0, "created_at": 1}
    verified = {"id": "v", "source": "extracted", "verified": True, "trust": 0.3, "created_at": 1}
    strong = {"id": "s", "source": "extracted", "verified": False, "trust": 0.8, "created_at": 5}
    weak = {"id": "w", "source": "extracted", "verified": False, "trust": 0.4, "created_at": 1}
    twin = {"id": "t", "source": "extracted", "verified": False, "trust": 0.8, "created_at": 9}
    assert contradiction_loser(curated, strong) is strong
    assert contradiction_loser(weak, verified) is weak
    assert contradiction_loser(strong, weak) is weak
    assert contradiction_loser(strong, twin) is twin  # same trust: the newer assertion goes
    assert contradiction_loser(curated, {**curated, "id": "o2"}) is None


def test_decay_uses_the_current_trust() -> None:
    policy, now = TrustPolicy(), 1e9
    row = {"confidence": 0.5, "source": "extracted", "verified": False, "assertions": 1}
    assert decayed({**row, "asserted_at": now - 300 * DAY_S}, policy, now) == (True, pytest.approx(0.09))
    assert decayed({**row, "asserted_at": now - DAY_S}, policy, now)[0] is False


def test_extraction_output_is_sanitised_to_the_vocabulary_and_the_limit() -> None:
    raw = json.dumps({"triples": [
        {"subject": "Aspirin", "relation": "TREATS", "object": "Headache", "confidence": 0.9},
        {"subject": "aspirin", "relation": "treats", "object": "headache", "confidence": 0.5},  # duplicate
        {"subject": "Aspirin", "relation": "CURES", "object": "Everything", "confidence": 1},  # not in vocabulary
        {"subject": "", "relation": "USES", "object": "x"},
        {"subject": "Kafka", "relation": "DEPENDS_ON", "object": "JVM", "confidence": "high"},
        "garbage", {"subject": "X", "relation": "IS_A", "object": "x"},  # loop
        *[{"subject": f"S{i}", "relation": "USES", "object": f"O{i}", "confidence": 2} for i in range(10)],
    ]})
    triples = sanitise(raw, 8)
    assert len(triples) == 8
    assert [t.title() for t in triples[:3]] == ["Aspirin TREATS Headache", "Kafka DEPENDS_ON JVM", "S0 USES O0"]
    assert triples[1].confidence == 0.5 and triples[2].confidence == 1.0
    assert sanitise("not json", 8) == [] and sanitise('{"triples": 3}', 8) == []
    schema = triples_schema(8)["properties"]["triples"]
    assert schema["maxItems"] == 8 and schema["items"]["properties"]["relation"]["enum"] == list(RELATION_TYPES)


def _event(**kw: object) -> IngestEvent:
    fields: dict[str, object] = {"response_id": "r", "tenant_id": "acme", "deadline_at": deadline_in(10),
                                 "question": "q", "answer": "a", **kw}
    return IngestEvent.model_validate(fields)


def test_which_answers_teach_something_and_their_domain() -> None:
    assert skip_reason(_event()) is None
    assert skip_reason(_event(cache_hit=True)) is not None
    assert skip_reason(_event(answer="  ")) is not None
    assert skip_reason(_event(tenant_id=SHARED_TENANT)) is not None
    assert domain_of(_event(knowledge_type="legal")) == "legal"
    assert domain_of(_event(knowledge_type="general", source_expert="medical_consult")) == "medical"
    assert domain_of(_event(knowledge_type="poetry")) == "general"


def test_a_translation_or_a_creative_text_is_not_extracted_from() -> None:
    """Issue 52: they state no facts, so their extraction call would cost tokens for nothing (the trivial path's
    learning went 16 -> 127 tokens per request with it)."""
    skip = GraphIngestSettings().graph_ingest_skip_types
    assert "translation" in (skip_reason(_event(knowledge_type="language"), skip) or "")
    assert skip_reason(_event(knowledge_type="creative"), skip) is not None
    assert skip_reason(_event(knowledge_type="science"), skip) is None
    assert skip_reason(_event(knowledge_type="language"), []) is None  # MOE_GRAPH_INGEST_SKIP_TYPES=[]: every one


def test_the_classification_sees_the_question_around_the_term_only() -> None:
    question = ("Compare lithium and osmium as they were in the year 1003: explain in detail their history, their "
                "physics and their everyday use, and what a geologist " + "would say about them " * 30)
    window = context_window("osmium", question, 5)
    assert window == "Compare lithium and osmium as they were in the ..."
    assert context_window("everyday use", question, 2) == "... and their everyday use, and what ..."
    assert context_window("absent", "a b c d e f", 2) == "a b c d ..."
    user = classification_messages("osmium", question, ["Element"], 5)[1]["content"]
    assert user == "Term: osmium\nSeen in the question: " + window


def test_a_gap_classification_must_name_a_known_class_with_confidence() -> None:
    classes = ["Drug", "Disease"]
    good = {"is_entity": True, "name": "Zorblax", "parent": "Drug", "domain": "medical",
            "aliases": ["ZBX", "zorblax", "ZBX"], "confidence": 0.9}
    found = parse_classification(json.dumps(good), "zorblax", classes, 0.5)
    assert found is not None and (found.name, found.parent, found.aliases) == ("Zorblax", "Drug", ["ZBX"])
    renamed = parse_classification(json.dumps({**good, "name": "Aspirin"}), "zorblax", classes, 0.5)
    assert renamed is not None and renamed.name == "zorblax"  # the model cannot rename the term
    for bad in [{**good, "parent": "Weapon"}, {**good, "is_entity": False}, {**good, "confidence": 0.2},
                {**good, "domain": "cooking"}]:
        assert parse_classification(json.dumps(bad), "zorblax", classes, 0.5) is None
    assert parse_classification("{", "zorblax", classes, 0.5) is None


def test_the_terms_of_one_question_are_classified_in_one_call_and_never_mixed_up() -> None:
    classes, terms = ["Drug", "Disease"], ["zorblax", "Quellitis", "mintra"]
    question = "Does zorblax help against Quellitis, " + "and what else " * 20 + "about mintra?"
    user = batch_messages([(terms, question)], classes, 2)[1]["content"]
    assert user.startswith("Terms:\n- zorblax\n- Quellitis\n- mintra\nSeen in the question: Does zorblax help")
    two = batch_messages([(terms[:2], question), (["florbex"], "Is florbex a drug?")], classes, 2)
    assert two[1]["content"] == user.split("\n- mintra")[0] + "\nSeen in the question: Does zorblax help against " \
        "Quellitis, and what ...\nTerms:\n- florbex\nSeen in the question: Is florbex a drug?"
    assert two[0] == batch_messages([(terms, question)], classes, 2)[0]  # the class list once, whatever the batch
    assert user.endswith("about mintra?") and terms_window(terms[:2], question, 2) == (
        "Does zorblax help against Quellitis, and what ...")
    # each term's own window (issue 52): the words between far-apart terms are not sent
    assert user.endswith("Seen in the question: Does zorblax help against Quellitis, and what ... else about "
                         "mintra?")
    assert terms_window(["zorblax", "absent"], question, 2) == "Does zorblax help against ..."
    schema = batch_schema(terms, classes)
    assert schema["required"] == terms and schema["additionalProperties"] is False
    assert schema["properties"]["mintra"]["properties"]["parent"]["enum"] == classes

    def entry(name: str, parent: str) -> dict[str, object]:
        return {"is_entity": True, "name": name, "parent": parent, "domain": "medical", "confidence": 0.9}

    raw = json.dumps({"QUELLITIS": entry("Quellitis", "Disease"), "zorblax": entry("Zorblax", "Drug"),
                      "mintra": entry("Zorblax", "Drug"),  # another term's classification under its key: dropped
                      "unasked": entry("Unasked", "Drug")})
    parts = split_batch(raw, terms)
    assert sorted(parts) == ["Quellitis", "zorblax"]  # keyed by the term as asked, folded; mintra left to ask again
    found = {t: parse_classification(parts[t], t, classes, 0.5) for t in parts}
    assert {t: (f.name, f.parent) for t, f in found.items() if f} == {
        "Quellitis": ("Quellitis", "Disease"), "zorblax": ("Zorblax", "Drug")}
    twice = json.dumps({"zorblax": entry("Zorblax", "Drug"), "Zorblax": entry("Zorblax", "Disease")})
    assert split_batch(twice, terms) == {}  # two answers for one term: neither is taken
    assert split_batch(json.dumps(entry("mintra", "Drug")), terms) == {"mintra": json.dumps(entry("mintra", "Drug"))}
    assert split_batch(json.dumps(entry("Aspirin", "Drug")), terms) == {}  # a lone answer naming no term asked
    for bad in ["{", "[1]", json.dumps({"zorblax": "Drug"})]:
        assert split_batch(bad, terms) == {}


def _fact(fid: str, s: str, t: str, o: str, hop: int, trust: float = 1.0) -> dict[str, object]:
    return {"id": fid, "subject": s, "type": t, "object": o, "subject_uid": s, "object_uid": o, "hop": hop,
            "trust": trust}


def test_facts_between_asked_entities_come_first_and_sibling_lists_are_dropped() -> None:
    rows = [_fact("1", "NSAID", "IS_A", "Drug", 2), _fact("2", "Ibuprofen", "TREATS", "Pain", 1, 0.6),
            _fact("3", "Ibuprofen", "INTERACTS_WITH", "Warfarin", 1, 0.9), _fact("4", "Ibuprofen", "IS_A", "NSAID", 1),
            _fact("5", "Aspirin", "TREATS", "Pain", 2), _fact("3", "Ibuprofen", "INTERACTS_WITH", "Warfarin", 1, 0.9)]
    ranked = rag.rank_facts(rows, {"Ibuprofen", "Warfarin"}, 10)
    assert [f["id"] for f in ranked] == ["3", "2", "4", "5"]
    text = rag.content(ranked, [], [])
    assert text.splitlines()[1] == "- Ibuprofen INTERACTS_WITH Warfarin [0.90]"
    assert [s.ref for s in rag.sources(ranked, [], [])] == ["3", "2", "4", "5"]
    assert rag.content([], [], []) == ""


def test_only_maximal_requirement_chains_are_kept() -> None:
    chains = [{"names": ["Lawsuit", "Claim"], "types": ["REQUIRES"], "ids": ["a"]},
              {"names": ["Lawsuit", "Claim", "Fee"], "types": ["REQUIRES", "REQUIRES"], "ids": ["a", "b"]},
              {"names": ["Lawsuit", "Court"], "types": ["PERFORMED_AT"], "ids": ["c"]}]
    kept = rag.maximal_chains(chains, 5)
    assert [c["ids"] for c in kept] == [["a", "b"], ["c"]]
    assert rag.chain_text(kept[0]) == "Lawsuit -> REQUIRES Claim -> REQUIRES Fee"


def test_the_context_cache_key_moves_with_the_graph_version() -> None:
    key = rag.cache_key("acme", "What treats pain?", {}, {"acme": 1, SHARED_TENANT: 4}, "x")
    assert key == rag.cache_key("acme", "what  treats PAIN?", {}, {"acme": 1, SHARED_TENANT: 4}, "x")
    assert key != rag.cache_key("acme", "What treats pain?", {}, {"acme": 2, SHARED_TENANT: 4}, "x")
    assert key != rag.cache_key("other", "What treats pain?", {}, {"acme": 1, SHARED_TENANT: 4}, "x")


def _plan(tasks: list[PlannedTask], **kw: object) -> tuple[Plan, ChatRequest]:
    request = ChatRequest(response_id="r", tenant_id="t", deadline_at=deadline_in(10), mode="moe-orchestrator",
                          messages=[ChatMessage(role="user", content="What treats pain?")])
    plan = Plan(response_id="r", tenant_id="t", deadline_at=request.deadline_at, mode="moe-orchestrator",
                question="What treats pain?", tasks=tasks, **kw)  # type: ignore[arg-type]
    return plan, request


def test_the_planner_adds_one_graph_task_to_non_trivial_plans_only() -> None:
    on, off = PlannerSettings(), PlannerSettings(planner_graph_tasks=False)
    expert = PlannedTask(task_id="t1", category="medical_consult", instruction="answer")
    plan, request = _plan([expert])
    added = add_graph_task(plan, request, on)
    assert [(t.task_id, t.kind, t.category) for t in added.tasks] == [
        ("t1", "expert", "medical_consult"), ("t2", "graph", "knowledge_graph")]
    assert add_graph_task(added, request, on) == added  # never twice
    assert add_graph_task(plan, request, off) == plan
    tool = PlannedTask(task_id="t1", kind="tool", category="calculate", tool="calculate", instruction="2+2")
    for unchanged in [_plan([expert], complexity="trivial"), _plan([expert], source="preflight"),
                      _plan([expert], source="cache"), _plan([tool])]:
        assert add_graph_task(unchanged[0], request, on) == unchanged[0]
