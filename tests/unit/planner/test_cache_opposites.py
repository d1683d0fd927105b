"""The cache guard's opposite words read per word run (planner.cache_text._opposite_sides) find exactly what every
pattern searched over the whole question finds: on the semantic cache's pairs, the precision sets' questions and
generated word sequences built from the patterns' own words, particles and hyphens."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.cache_text import _OPPOSITE_RES, _PARTICLE_RES, _opposite_sides, words

pytestmark = pytest.mark.unit
DATA = Path(__file__).resolve().parents[2] / "data"
# the patterns' literal words, stems grown into words, the particles and their verbs, words with an apostrophe
VOCABULARY = sorted({w for _, _, p in _OPPOSITE_RES for w in re.findall(r"[a-z]+", p.pattern) if len(w) > 1}
                    | {"enabled", "disabling", "unlocking", "turned", "switch", "go", "the", "wifi", "light", "on",
                       "off", "up", "down", "in", "out", "don't", "it's", "log-in", "sign-out", "round", "a", "2",
                       "1000", "3rd", "0x1f", "2fast"})


def every_pattern(tokens: list[str]) -> set[tuple[int, int]]:
    text = " ".join(tokens)
    return {(group, side) for group, side, pattern in (*_OPPOSITE_RES, *_PARTICLE_RES) if pattern.search(text)}


def _questions() -> list[str]:
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, str):
            found.append(node)
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    for path in [DATA / "cache_pairs.yaml", *sorted((DATA / "precision").glob("*.yaml"))]:
        walk(yaml.safe_load(path.read_text()))
    return found


def test_the_data_sets_read_the_same_sides() -> None:
    questions = _questions()
    assert len(questions) > 500
    differ = [q for q in questions if _opposite_sides(words(q)) != every_pattern(words(q))]
    assert differ == []
    assert sum(bool(_opposite_sides(words(q))) for q in questions) > 50  # the guard has work to do on them


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=12))
def test_generated_word_sequences_read_the_same_sides(tokens: list[str]) -> None:
    assert _opposite_sides(tokens) == every_pattern(tokens)
