"""Complexity estimate without a model call, and the router's pure decision."""

from __future__ import annotations

import pytest

from planner.complexity import estimate
from planner.router import decide

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("question", [
    "hi", "Thanks!", "What is the capital of France?", "Who wrote Hamlet?", "Translate 'cat' into German",
    "Boiling point of water?",
])
def test_trivial(question: str) -> None:
    assert estimate(question) == "trivial"


@pytest.mark.parametrize("question", [
    "Why is the sky blue?", "How does a refrigerator work?", "Explain recursion",
    "Write a haiku about autumn", "Solve 2x + 3 = 7", "What is the population of Japan and its capital city?",
    "Hello, can you explain to me in a few words how vaccines train the immune system?",
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


def test_router_needs_distance_and_a_lead_over_the_next_category() -> None:
    clear = decide([("math", 0.30), ("math", 0.35), ("science", 0.60)], threshold=0.55, margin=0.15)
    assert clear is not None and (clear.category, clear.clear) == ("math", True)
    assert round(clear.margin, 2) == 0.30
    close_call = decide([("math", 0.30), ("science", 0.40)], threshold=0.55, margin=0.15)
    assert close_call is not None and not close_call.clear and close_call.category == "math"
    too_far = decide([("math", 0.70), ("science", 0.95)], threshold=0.55, margin=0.15)
    assert too_far is not None and not too_far.clear
    alone = decide([("math", 0.20)], threshold=0.55, margin=0.15)
    assert alone is not None and alone.clear
    assert decide([], threshold=0.55, margin=0.15) is None
