"""The exact cache's question normalisation (issue 52: one request's steps normalise its question 6+ times, each
14 regex passes): compiled once and remembered, it gives what the per-call substitutions gave, character for
character (a different key would miss every answer cached before), for short and long questions."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moe_core.llm import exact_cache
from moe_core.llm.exact_cache import MEMO_CHARS, normalise

pytestmark = pytest.mark.unit
PIECES = ["can't", "cannot", "won't", "shan't", "don't", "n't", "what's", "how's", "where's", "who's", "it's",
          "that's", "there's", "I'm", "let's", "bit's", "xcan't", "Can\u2019t", "  ", "\t", " ", "?", "!", ".",
          '"', "`", "Ünïcode", "ﬁ", "word", "A", "b", "'", "n", "t", "s"]


def _before(question: str) -> str:
    """The substitutions as each call made them before (kept here as the reference)."""
    text = exact_cache.plain(question).lower()
    text = re.sub(r"\s+", " ", text).strip()
    for short, long in exact_cache._CONTRACTIONS.items():
        if short.startswith("n'"):
            text = re.sub(r"(\w)n't\b", r"\1" + long, text)
        else:
            text = re.sub(rf"\b{re.escape(short)}", long, text)
    return text.strip(" \t\"'`.,;:!?")


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30))
def test_the_same_key_as_before(pieces: list[str]) -> None:
    question = "".join(pieces)
    assert normalise(question) == _before(question)
    assert normalise(question) == _before(question)  # remembered: the same again


def test_a_long_question_is_normalised_alike_and_not_remembered() -> None:
    question = "What's " + "a long question, isn't it? " * (MEMO_CHARS // 20)
    assert len(question) > MEMO_CHARS
    hits = exact_cache._remembered.cache_info().currsize
    assert normalise(question) == _before(question)
    assert exact_cache._remembered.cache_info().currsize == hits
