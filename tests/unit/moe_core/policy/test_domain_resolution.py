# ruff: noqa: RUF001, RUF002  (look-alike letters are what these tests are about)
"""The domain resolver (moe_core.policy.domains) folds look-alike letters before it resolves, and knows every name
of the base ontology, not only a word list (issue 50: a Cyrillic І evaded a 27-word medical list)."""

from __future__ import annotations

from pathlib import Path

import pytest

from moe_core.policy.domains import key_of, keys_of, load_keywords, resolve_text
from moe_core.policy.ontology_words import MIN_CHARS, base_ontology

pytestmark = pytest.mark.unit
WORDS = load_keywords(Path(__file__).resolve().parents[4] / "policy" / "domain-keywords.yaml")


def test_look_alike_letters_and_invisible_characters_are_folded_before_resolution() -> None:
    assert key_of("Іbuprofen") == "ibuprofen" and key_of("Ibu\u200bprofen") == "ibuprofen"
    assert keys_of("Іbuprofen") == {"іbuprofen", "ibuprofen"}  # as written and folded
    assert WORDS.of_words("Іbuprofen") == {"medical"}
    assert WORDS.of_words("a dоsаge (Cyrillic о and а)") == {"medical"}
    assert resolve_text("Give the ﻿раtient the usual dose", WORDS) == ["medical"]


def test_the_names_of_the_base_ontology_are_evidence_of_their_domain() -> None:
    assert WORDS.of_words("Warfarin Forte") == {"medical"}  # an ontology drug inside a longer name
    assert WORDS.of_words("Advil") == {"medical"}  # an alias: a brand name no word list holds
    assert "medical" in WORDS.of_words("after two heart attacks")  # several words, plural folded
    assert WORDS.of_words("Zorn Lemma") == {"math"} and WORDS.of_words("Blue Tuesday") == set()
    phrases = base_ontology()
    assert len(phrases.domains) > 500 and all(len(" ".join(k)) >= MIN_CHARS - 1 for k in phrases.domains)
    assert ("mi",) not in phrases.domains  # too short to mean one thing
