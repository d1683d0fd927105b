"""Complexity estimate without a model call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker

from moe_core.contracts import ChatMessage, ChatRequest, Plan, deadline_in
from moe_core.policy.settings import in_repo
from planner.complexity import ProtectedDomains, estimate, trivial_category, with_domains
from tests.support.in_memory import collect, planner_on

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


CATEGORIES = ("general", "translation", "math")


@pytest.mark.parametrize("question", [
    "Translate 'room number 101' into German.", "please translate 'see you tomorrow' to Dutch",
    "Übersetze 'guten Morgen' ins Englische", "  'Translate' 'cat' into French",
])
def test_a_trivial_request_to_translate_goes_to_the_translator_wherever_the_router_puts_it(question: str) -> None:
    """Its answer states no facts: graph-ingest skips it (no extraction call); the router's distance for such a
    question is often beyond its threshold (the quoted words weigh more than the verb)."""
    assert trivial_category(question, None, 0.55, CATEGORIES) == "translation"
    assert trivial_category(question, ("math", 0.3), 0.55, CATEGORIES) == "translation"


def test_any_other_trivial_question_takes_the_routers_category_within_its_threshold_else_general() -> None:
    assert trivial_category("What is 2+2?", ("math", 0.5), 0.55, CATEGORIES) == "math"
    assert trivial_category("What is 2+2?", ("math", 0.6), 0.55, CATEGORIES) == "general"
    assert trivial_category("What does translate mean?", None, 0.55, CATEGORIES) == "general"
    assert trivial_category("Translate 'cat' into German", None, 0.55, ("general",)) == "general"


def test_the_trivial_word_limit_is_the_originals_fifteen_and_configurable() -> None:
    fifteen = " ".join(["word"] * 15) + "?"
    assert estimate(fifteen) == "trivial"
    assert estimate(fifteen + " more") == "moderate"
    assert estimate(fifteen, trivial_max_words=9) == "moderate"


KEYWORDS = in_repo(Path("policy/domain-keywords.yaml"))
SEPSIS = "Is Vexotrin safe for a sepsis patient with severe kidney disease?"


def test_a_short_question_of_a_protected_domain_is_never_trivial() -> None:
    """A hospital's trial: a 12-word clinical question was trivial, so one general expert answered it without the
    tenant's reviewed knowledge, its documents or the medical critic (MOE_PLANNER_NEVER_TRIVIAL_DOMAINS)."""
    protected = ProtectedDomains.load(KEYWORDS, "medical,legal")
    assert estimate(SEPSIS) == "trivial" and with_domains("trivial", SEPSIS, protected) == "moderate"
    assert protected.touched("Which statute governs this contract clause?") == {"legal"}
    assert with_domains("trivial", "What is the capital of France?", protected) == "trivial"
    assert with_domains("complex", SEPSIS, protected) == "complex"
    assert with_domains("trivial", SEPSIS, ProtectedDomains.load(KEYWORDS, "")) == "trivial"  # none listed
    assert with_domains("trivial", SEPSIS, ProtectedDomains.load(KEYWORDS, "legal")) == "trivial"


@pytest.mark.infra  # the planner's memo is real Redis; FastStream's in-memory broker
async def test_the_planner_gives_a_short_clinical_question_the_graph_and_a_short_other_one_the_trivial_route(
        redis: Any, namespace: str) -> None:
    llm, bus = planner_on(namespace, redis, [{"reply": json.dumps({"tasks": [
        {"category": "medical_consult", "instruction": "answer the question"}]})}],
                          planner_skip_trivial=True, planner_graph_tasks=True)
    plans = collect(bus, bus.topics.plans, Plan)
    async with TestKafkaBroker(bus.broker):
        for i, question in enumerate((SEPSIS, "What is the capital of France?")):
            await bus.publish(ChatRequest(response_id=f"r{i}-{namespace}", tenant_id="t", deadline_at=deadline_in(30),
                                          mode="moe-orchestrator",
                                          messages=[ChatMessage(role="user", content=question)]), bus.topics.requests)
    clinical, capital = plans
    assert clinical.complexity == "moderate" and clinical.source == "llm"
    assert [t.kind for t in clinical.tasks] == ["expert", "graph"]
    assert capital.complexity == "trivial" and [t.kind for t in capital.tasks] == ["expert"]
    assert len(llm.state.scripted.get_calls()) == 1  # the trivial route asked no planner model
