"""graph-rag's term extraction without an LLM: exact, alias, multi-word, fuzzy, unknown terms."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graph_rag.generic import is_generic
from graph_rag.terms import Lexicon, bounded_levenshtein, extract, tokens
from moe_core.knowledge.graph import ontology
from moe_core.knowledge.graph.vocab import SHARED_TENANT

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def shared() -> Lexicon:
    rows = [{"uid": e.uid, "name": e.name, "key": e.key, "alias_keys": e.alias_keys} for e in ontology.load().entities]
    return Lexicon.build(rows, SHARED_TENANT)


def names(question: str, lexicons: list[Lexicon]) -> list[str]:
    return [m.name for m in extract(question, lexicons).matches]


def test_names_and_aliases_match_exactly(shared: Lexicon) -> None:
    assert names("Can I take Advil together with Coumadin?", [shared]) == ["Ibuprofen", "Warfarin"]
    assert names("Is high blood pressure dangerous for the kidneys?", [shared]) == ["Hypertension", "Kidney"]
    assert names("What does GDPR say about the right to be forgotten?", [shared]) == ["GDPR", "Right to Erasure"]
    assert names("Is C++ faster than Node.js?", [shared]) == ["C++", "Node.js"]


def test_the_longest_name_wins(shared: Lexicon) -> None:
    found = extract("How does the Fundamental Theorem of Calculus link derivative and integral?", [shared])
    assert [m.name for m in found.matches] == ["Fundamental Theorem of Calculus", "Derivative", "Integral"]


def test_typos_match_fuzzily_but_short_words_and_stopwords_do_not(shared: Lexicon) -> None:
    found = extract("Does ibuprofin or amoxicilin help against a migrane?", [shared])
    assert [(m.name, m.fuzzy) for m in found.matches] == [("Ibuprofen", True), ("Amoxicillin", True)]
    assert found.unknown == ["migrane"]  # under 8 characters: no fuzzy match
    assert names("What is the best way to go there?", [shared]) == []  # 'go' is not Golang, 'way' no entity
    # common words one edit away from a name or alias stay unmatched
    assert names("The content and status of the parts were forced at that price", [shared]) == []


def test_plurals_fall_back_to_the_singular(shared: Lexicon) -> None:
    assert names("Which statins and antibiotics interact?", [shared]) == ["Statin", "Antibiotic"]


def test_the_tenants_own_entities_come_first() -> None:
    own = Lexicon.build([{"uid": "mine", "name": "Widget", "key": "widget", "alias_keys": ["gizmo"]}], "acme")
    other = Lexicon.build([{"uid": "theirs", "name": "Widget", "key": "widget", "alias_keys": []}], SHARED_TENANT)
    found = extract("tell me about the gizmo and the widget", [own, other])
    assert [(m.uid, m.term) for m in found.matches] == [("mine", "gizmo")]  # one entity, reported once


def test_unknown_content_words_become_gap_terms(shared: Lexicon) -> None:
    found = extract("Explain the blorptastic quantum frobnicator in Kubernetes, please", [shared])
    assert [m.name for m in found.matches] == ["Kubernetes"]
    assert found.unknown == ["blorptastic quantum frobnicator"]
    many = extract("zorbulate flimflam, quixotic gargleblaster; xylophonic wibbles and snorkelwhacks", [shared], 2)
    assert many.unknown == ["zorbulate flimflam", "quixotic gargleblaster"]
    assert extract("what is 42 and why?", [shared]).unknown == []


def test_terms_made_only_of_generic_words_are_no_gaps(shared: Lexicon) -> None:
    """The bench's aspects: their generic words are left out, the concepts beside them stay, whole."""
    found = extract("explain in detail how each one formed or was made, and what threatens it today", [shared])
    assert found.unknown == []
    found = extract("how scientists study the steam engine and what is still unknown about supply chains",
                    [shared], 5)
    assert found.unknown == ["steam engine", "supply chains"]
    found = extract("their economic value, their cultural meaning and their role in machine learning", [shared], 5)
    assert found.unknown == ["machine learning"]
    kept = extract("economic growth, cultural revolution, nineteenth century, deep learning", [shared], 5)
    assert kept.unknown == ["economic growth", "cultural revolution", "nineteenth century", "deep learning"]
    # a generic term takes no place of the limit: the concept after it is reported
    assert extract("formed, threatened, blorptastic frobnicator", [shared], 1).unknown == ["blorptastic frobnicator"]
    before = extract("how scientists study them: economic value", [shared], 5, drop_generic=False)
    assert before.unknown == ["scientists study", "economic value"]  # MOE_GRAPH_GAPS_GENERIC=true: as before


def test_no_ontology_name_or_alias_is_generic() -> None:
    """The base ontology's names and aliases are concepts: none is made only of generic words."""
    names = [n for e in ontology.load().entities for n in [e.name, *e.aliases]]
    assert len(names) > 300
    assert [n for n in names if is_generic(" ".join(tokens(n)))] == []


def test_tokens() -> None:
    assert tokens("Aspirin's effects, e.g. on C# / Node.js!") == ["aspirin", "effects", "e.g", "on", "c#", "node.js"]


@given(a=st.text("abcde", max_size=8), b=st.text("abcde", max_size=8), bound=st.integers(0, 3))
def test_bounded_levenshtein_agrees_with_the_full_distance(a: str, b: str, bound: int) -> None:
    full = _levenshtein(a, b)
    assert bounded_levenshtein(a, b, bound) == (full if full <= bound else None)


def _levenshtein(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def test_a_lexicon_takes_new_entities_and_aliases_but_not_a_rename_or_a_lost_key() -> None:
    lex = Lexicon.build([{"uid": "u1", "name": "Widget", "key": "widget", "alias_keys": ["gizmo"]}], "acme")
    assert lex.update([{"uid": "u2", "name": "Gadget", "key": "gadget", "alias_keys": ["gizmo"]},
                       {"uid": "u1", "name": "Widget", "key": "widget", "alias_keys": ["gizmo", "doohickey"]}], "acme")
    assert {k: e.uid for k, e in lex.keys.items()} == {"widget": "u1", "gizmo": "u1", "gadget": "u2",
                                                       "doohickey": "u1"}  # a shared key names the first reader
    before = dict(lex.keys)
    assert not lex.update([{"uid": "u3", "name": "Sprocket", "key": "sprocket"},
                           {"uid": "u1", "name": "Widget", "key": "widget", "alias_keys": ["gizmo"]}], "acme")
    assert not lex.update([{"uid": "u2", "name": "Gadget Pro", "key": "gadget", "alias_keys": ["gizmo"]}], "acme")
    assert lex.keys == before  # nothing taken from a read that needs a whole one
