"""Semantic cache, pure logic: normalisation, the near-miss guards, the hit/few-shot decision, scoping."""

from __future__ import annotations

import pytest

from moe_core.contracts import Answer, ChatMessage, ChatRequest, ErrorInfo, ModelUse, deadline_in
from planner.cache_text import conflict, normalise
from planner.semantic_cache import Candidate, cache_key, cache_scope, cacheable, cached_answer, decide

pytestmark = pytest.mark.unit


def test_normalise_folds_case_space_quotes_and_contractions() -> None:
    assert normalise("  What\u2019s   the CAPITAL of France?? ") == "what is the capital of france"
    assert normalise("Why doesn't it work") == "why does not it work"
    assert normalise("\uff23\uff41\uff46\u00e9") == "caf\u00e9"  # NFKC: full-width letters


@pytest.mark.parametrize(("a", "b", "why"), [
    ("How do I turn on the wifi?", "How do I turn off the wifi?", "opposite"),
    ("Turn the lights on", "Turn the lights off", "opposite"),
    ("How do I enable 2FA?", "How do I disable 2FA?", "opposite"),
    ("Is coffee healthy?", "Is coffee unhealthy?", "opposite"),
    ("What is 15% of 200?", "What is 15% of 300?", "numbers"),
    ("What is 2,340 divided by 2?", "What is 2340 divided by 3?", "numbers"),
    ("Give me three tips", "Give me five tips", "numbers"),
    ("Error E1234 on start", "Error E1235 on start", "numbers"),
    ("Why does it compile?", "Why does it not compile?", "negated"),
    ("Why can I log in?", "Why can't I log in?", "negated"),
    ("What is the capital of France?", "What is the capital of Germany?", "entities"),
    ("Configure DNS on the router", "Configure DHCP on the router", "entities"),
    ("how do i remove a stain of red wine from a white cotton shirt",
     "how do i remove a stain of red wine from a white cotton carpet", "swapped"),
    ("Compare a cello and a walrus: explain their history", "Compare a cello and a lynx: explain their history",
     "swapped"),
    ("how do i cook rice", "how do i cook pasta", "swapped"),
])
def test_guards_object_to_near_misses(a: str, b: str, why: str) -> None:
    reason = conflict(a, b)
    assert reason is not None and why in reason
    assert conflict(b, a) is not None  # symmetric


@pytest.mark.parametrize(("a", "b"), [
    ("What is the capital of France?", "What's France's capital city?"),
    ("What is the capital of France?", "capital city of france?"),  # lower case still mentions the entity
    ("How do I turn on the wifi?", "How can I switch on the wifi?"),
    ("What is 2,340 divided by 2?", "How much is 2340 divided by two?"),  # separators and number words
    ("Who wrote Hamlet?", "Who is the author of Hamlet?"),
    ("Is coffee good for you?", "Is coffee good for your health?"),  # an added word is not a swap
    ("What is a black hole?", "What are black holes?"),  # another form of the same word
    ("How does TCP differ from UDP?", "What is the difference between TCP and UDP?"),
    ("explain how the immune system responds to a virus infection",
     "Explain how the immune system responds to a viral infection."),
    ("describe the life cycle of a frog for children", "Describe a frog's life cycle for kids."),  # synonyms
])
def test_guards_let_paraphrases_through(a: str, b: str) -> None:
    assert conflict(a, b) is None


def test_every_one_subject_swap_of_the_bench_questions_is_refused() -> None:
    """make bench found long questions that differ in one common noun closer than the hard threshold."""
    import random

    from bench.scenarios import _ASPECTS, _SUBJECTS

    rng = random.Random(3)
    for _ in range(300):
        a, b, c = rng.sample(_SUBJECTS, 3)
        aspect = rng.choice(_ASPECTS)
        first, second = f"Compare {a} and {b}: explain {aspect}.", f"Compare {a} and {c}: explain {aspect}."
        assert conflict(first, second) is not None, (first, second)


def _cand(key: str, question: str, distance: float) -> Candidate:
    return Candidate(key=key, question=question, answer=f"answer of {key}", distance=distance)


def test_decide_hit_few_shot_and_miss() -> None:
    q = "How can I switch on the wifi?"
    found = [_cand("far", "What is a router?", 0.6), _cand("off", "How do I turn off the wifi?", 0.05),
             _cand("on", "How do I turn on the wifi?", 0.1), _cand("mid", "Wifi is slow, why?", 0.3)]
    lookup = decide(found, q, hard=0.16, soft=0.35, max_few_shot=2)
    assert lookup.hit is not None and lookup.hit.key == "on"  # "off" is nearer but the guard rejects it
    assert [f.question for f in lookup.few_shot] == ["How do I turn off the wifi?", "Wifi is slow, why?"]
    assert lookup.reason == "hit"
    few = decide(found[:1] + found[3:], q, hard=0.16, soft=0.35, max_few_shot=2)
    assert few.hit is None and few.reason == "few_shot" and len(few.few_shot) == 1
    miss = decide([_cand("far", "What is a router?", 0.6)], q, hard=0.16, soft=0.35, max_few_shot=2)
    assert (miss.hit, miss.few_shot, miss.reason) == (None, [], "miss")


def _request(*messages: tuple[str, str], tenant: str = "t1", mode: str = "moe-orchestrator") -> ChatRequest:
    return ChatRequest(response_id="r1", tenant_id=tenant, deadline_at=deadline_in(30), mode=mode,
                       messages=[ChatMessage(role=r, content=c) for r, c in messages])  # type: ignore[arg-type]


def test_scope_separates_tenants_modes_and_system_prompts_and_skips_conversations() -> None:
    base = cache_scope(_request(("user", "hi")))
    assert base is not None
    assert base == cache_scope(_request(("user", "another question")))
    assert base != cache_scope(_request(("user", "hi"), tenant="t2"))
    assert base != cache_scope(_request(("user", "hi"), mode="moe-orchestrator-concise"))
    assert base != cache_scope(_request(("system", "be terse"), ("user", "hi")))
    assert cache_scope(_request(("user", "a"), ("assistant", "b"), ("user", "and then?"))) is None
    assert cache_key(base, "Hi!", "r1") == cache_key(base, "  hi ", "r1") != cache_key(base, "hi", "r2")


def test_only_good_final_answers_are_cacheable_and_a_hit_costs_nothing() -> None:
    fields = {"response_id": "r1", "tenant_id": "t", "deadline_at": deadline_in(5), "mode": "m",
              "content": "Paris.", "cache_key": "k1"}
    assert cacheable(Answer(**fields))
    assert not cacheable(Answer(**{**fields, "cache_key": None}))
    assert not cacheable(Answer(**fields, cache_hit=True))
    assert not cacheable(Answer(**fields, finish_reason="deadline"))
    assert not cacheable(Answer(**fields, finish_reason="length"))
    assert not cacheable(Answer(**fields, error=ErrorInfo(code="x", message="y")))
    assert not cacheable(Answer(**{**fields, "content": "  "}))
    hit = Candidate(key="k9", question="What is the capital of France?", answer="Paris.", distance=0.02,
                    experts_used=["general"], models_used=[ModelUse(model="m1", category="general")])
    answer = cached_answer(_request(("user", "capital of france?")), hit, "capital of france?")
    assert (answer.cache_hit, answer.model_calls, answer.usage.total_tokens) == (True, 0, 0)
    assert (answer.content, answer.cache_key, answer.question) == ("Paris.", "k9", "capital of france?")
    assert answer.sources[0].kind == "cache" and answer.models_used == hit.models_used
