"""Complexity estimate without a model call."""

from __future__ import annotations

import pytest

from planner.complexity import estimate

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("question", [
    "hi", "Thanks!", "What is the capital of France?", "Who wrote Hamlet?", "Translate 'cat' into German",
    "Boiling point of water?", "What is the population of Japan and its capital city?",
    "Which river flows through the old town of Prague in the Czech Republic?",
])
def test_trivial(question: str) -> None:
    assert estimate(question) == "trivial"


@pytest.mark.parametrize("question", [
    "Why is the sky blue?", "How does a refrigerator work?", "Explain recursion",
    "Write a haiku about autumn", "Solve 2x + 3 = 7",
    "Which river flows through the middle of the old town of Prague, the capital of the Czech Republic?",
    "Hello, can you explain to me in a few words how vaccines train the immune system?",
    "Can you help me think through a decision I have to make?",  # within 15 words, but asks for judgement
])
def test_moderate(question: str) -> None:
    assert estimate(question) == "moderate"


@pytest.mark.parametrize("question", [
    "Compare PostgreSQL and MySQL for a write-heavy workload",
    "What are the pros and cons of remote work?",
    "What is X? What is Y? And what is Z?",
    "Review this:\n```python\nprint(1)\n```",
    "Do this:\n1. read the file\n2. count words\n3. plot them",
    " ".join(["word"] * 70),
])
def test_complex(question: str) -> None:
    assert estimate(question) == "complex"


def test_the_trivial_word_limit_is_the_originals_fifteen_and_configurable() -> None:
    fifteen = " ".join(["word"] * 15) + "?"
    assert estimate(fifteen) == "trivial"
    assert estimate(fifteen + " more") == "moderate"
    assert estimate(fifteen, trivial_max_words=9) == "moderate"
