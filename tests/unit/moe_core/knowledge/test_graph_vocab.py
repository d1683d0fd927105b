"""The closed vocabulary, the base ontology file and the triple model (pure logic, no Neo4j)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from moe_core.knowledge.graph import ontology
from moe_core.knowledge.graph.model import Triple
from moe_core.knowledge.graph.names import entity_uid, normalize, relation_id
from moe_core.knowledge.graph.vocab import (
    CONFLICTS,
    RELATION_SET,
    RELATION_TYPES,
    SHARED_TENANT,
    conflict_pairs,
    conflicting_types,
    visible_tenants,
)

pytestmark = pytest.mark.unit
REQUIRED_TYPES = {"IS_A", "TREATS", "CAUSES", "INTERACTS_WITH", "CONTRAINDICATES", "DEFINES", "USES", "IMPLEMENTS",
                  "DEPENDS_ON", "EXTENDS", "RELATED_TO", "AFFECTS"}


def test_the_base_ontology_is_large_typed_and_every_entity_has_aliases() -> None:
    onto = ontology.load()
    assert len(onto.entities) >= 200
    assert all(e.aliases for e in onto.entities)
    assert {e.domain for e in onto.entities} >= {"medical", "legal", "technical", "math", "science"}
    used = {r.type for r in onto.relations}
    assert used <= RELATION_SET
    assert used >= REQUIRED_TYPES
    uids = {e.uid for e in onto.entities}
    assert all(r.subject in uids and r.object in uids for r in onto.relations)
    non_classes = [e for e in onto.entities if not e.is_class]
    subjects_of_is_a = {r.subject for r in onto.relations if r.type == "IS_A"}
    assert all(e.uid in subjects_of_is_a for e in non_classes), "every entity belongs to a class"


def test_the_ontology_ids_are_stable_and_the_digest_follows_the_content() -> None:
    first, second = ontology.load(), ontology.load()
    assert first.digest == second.digest
    assert [e.uid for e in first.entities] == [e.uid for e in second.entities]
    aspirin = next(e for e in first.entities if e.name == "Aspirin")
    assert aspirin.uid == entity_uid(SHARED_TENANT, "aspirin")
    assert "acetylsalicylic acid" in aspirin.alias_keys


@pytest.mark.parametrize("body, message", [
    ("medical:\n  classes: [[Drug, null, [medicine]]]\n  entities: [[Aspirin, Drug, [ASA]]]\n"
     "  relations: [[Aspirin, CURES, Drug]]\n", "unknown relation type 'CURES'"),
    ("medical:\n  classes: [[Drug, null, [medicine]]]\n  entities: [[Aspirin, Drug, []]]\n", "has no alias"),
    ("medical:\n  classes: [[Drug, null, [medicine]]]\n  entities: [[Aspirin, Drug, [ASA]]]\n"
     "  relations: [[Aspirin, TREATS, Headache]]\n", "names an entity that is not listed"),
    ("medical:\n  classes: [[Drug, null, [medicine]]]\n  entities: [[Aspirin, Pill, [ASA]]]\n", "is not a class"),
    ("medical:\n  classes: [[Drug, null, [medicine]]]\n  entities: [[Aspirin, Drug, [medicine]]]\n",
     "belongs to both"),
    ("cooking:\n  classes: [[Dish, null, [meal]]]\n", "unknown domain"),
])
def test_the_ontology_loader_refuses_a_broken_file(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "onto.yaml"
    path.write_text(body)
    with pytest.raises(ontology.OntologyError, match=message):
        ontology.load(path)


def test_a_triple_accepts_only_the_closed_vocabulary() -> None:
    assert Triple(subject=" Aspirin ", relation="treats", object="Pain").relation == "TREATS"
    assert Triple(subject="A", relation="depends on", object="B").relation == "DEPENDS_ON"
    for bad in ["CURES", "TREATS; MATCH (n) DETACH DELETE n", "", "IS_A]->(x) //"]:
        with pytest.raises(ValidationError):
            Triple(subject="A", relation=bad, object="B")
    with pytest.raises(ValidationError):
        Triple(subject="Aspirin", relation="TREATS", object="aspirin!")  # a loop
    with pytest.raises(ValidationError):
        Triple(subject="???", relation="TREATS", object="Pain")


def test_conflicts_are_symmetric_and_limited_to_the_vocabulary() -> None:
    assert conflicting_types("TREATS") == ["CAUSES", "CONTRAINDICATES"]
    assert conflicting_types("CAUSES") == ["TREATS"]
    assert conflicting_types("USES") == []
    assert all(a in RELATION_SET and b in RELATION_SET for a, b in CONFLICTS)
    pairs = conflict_pairs()
    assert all([b, a] in pairs for a, b in pairs)


def test_names_and_ids() -> None:
    assert normalize("  Crohn\u2019s   Disease! ") == "crohn s disease"
    assert normalize("Crohn's Disease") == "crohn's disease"
    assert normalize("C++") == "c++" and normalize("Node.js.") == "node.js"
    assert normalize("Naïve  Bayes") == "naive bayes"
    assert relation_id("t", "a", "TREATS", "b") == relation_id("t", "a", "TREATS", "b")
    assert relation_id("t", "a", "TREATS", "b") != relation_id("u", "a", "TREATS", "b")
    assert visible_tenants("acme") == ["acme", SHARED_TENANT]
    assert visible_tenants(SHARED_TENANT) == [SHARED_TENANT]
    assert len(RELATION_TYPES) == len(RELATION_SET)
