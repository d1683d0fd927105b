"""Expert output protocol, prompts, history compression and few-shot examples (pure logic)."""

from __future__ import annotations

import pytest

from expert_worker.core import expert_messages
from expert_worker.history import compress, shorten
from expert_worker.prompts import PROMPTS, system_prompt
from expert_worker.protocol import TRUNCATED, parse
from moe_core.contracts import EXPERT_CATEGORIES, ChatMessage, ExpertTask, FewShot, deadline_in

pytestmark = pytest.mark.unit


def test_full_protocol() -> None:
    out = parse("CORE_FINDING: Paris is the capital.\nDETAILS: Since 987.\nGAPS: none\nREFERRAL: none\n"
                "CONFIDENCE: high", 1000)
    assert (out.content, out.confidence, out.gaps, out.referral, out.tagged) == (
        "Paris is the capital.\n\nSince 987.", "high", "", None, True)


@pytest.mark.parametrize(("text", "content", "confidence"), [
    # decorated, reordered, lower case, markdown
    ("**Core finding:** 42\n**Confidence:** Low", "42", "low"),
    ("## CONFIDENCE - medium\n## CORE_FINDING - It works.\n## DETAILS - run it twice", "It works.\n\nrun it twice",
     "medium"),
    ("1. CORE FINDING: yes\n2. GAPS: the year\n3. CONFIDENCE = high", "yes", "high"),
    ("core_finding: multi\nline answer\nconfidence: HIGH.", "multi\nline answer", "high"),
    # missing tags
    ("Just an answer.", "Just an answer.", "medium"),
    ("CORE_FINDING: no confidence given", "no confidence given", "medium"),
    ("Answer first.\nCONFIDENCE: low\n", "Answer first.", "low"),
    ("CONFIDENCE: high\nThe answer after the tag.", "The answer after the tag.", "high"),
    ("CONFIDENCE: sure\nx", "x", "medium"),  # an unknown level is medium
    # prose that merely starts with a tag word is not a tag
    ("Details of the procedure are in the manual.\nCONFIDENCE: medium", "Details of the procedure are in the manual.",
     "medium"),
])
def test_robust_parsing(text: str, content: str, confidence: str) -> None:
    out = parse(text, 1000)
    assert (out.content, out.confidence) == (content, confidence)


def test_gaps_and_referral_are_kept_for_the_merger() -> None:
    out = parse("CORE_FINDING: Take rest.\nGAPS: dosage for children\nREFERRAL: Medical consult\nCONFIDENCE: medium",
                1000)
    assert out.gaps == "dosage for children" and out.referral == "medical_consult"
    assert out.data() == {"core_finding": "Take rest.", "gaps": "dosage for children",
                          "referral": "medical_consult", "tagged": True}


def test_output_is_capped_at_a_word_boundary() -> None:
    out = parse("CORE_FINDING: " + "word " * 400, 200)
    assert len(out.content) <= 200 and out.content.endswith(TRUNCATED)
    assert not out.content.removesuffix(TRUNCATED).endswith("wor")


def test_every_category_has_its_prompt_with_the_protocol() -> None:
    assert set(PROMPTS) == set(EXPERT_CATEGORIES) and len(PROMPTS) == 12
    for category in EXPERT_CATEGORIES:
        prompt = system_prompt(category)
        assert PROMPTS[category] in prompt
        for tag in ("CORE_FINDING", "DETAILS", "CONFIDENCE"):  # the original's three fields (seed 002)
            assert tag in prompt
        assert "GAPS" not in prompt and "REFERRAL" not in prompt  # read when written, never asked for (issue 52)
    assert system_prompt("astrology") == system_prompt("general")


def _turns(*sizes: int) -> list[ChatMessage]:
    return [ChatMessage(role="user" if i % 2 == 0 else "assistant", content=f"{i}:" + "x" * (n - 2))
            for i, n in enumerate(sizes)]


def test_history_keeps_the_newest_turns_within_the_budget() -> None:
    history = _turns(100, 100, 100, 100, 100)
    kept = compress(history, max_turns=3, max_chars=1000)
    assert [m.content[:2] for m in kept[1:]] == ["2:", "3:", "4:"]
    assert kept[0].role == "system" and "2 earlier messages" in kept[0].content
    kept = compress(history, max_turns=10, max_chars=250)
    assert [m.content[:2] for m in kept[1:]] == ["3:", "4:"] and "3 earlier" in kept[0].content
    assert compress(history, max_turns=10, max_chars=10_000) == history  # nothing dropped, no note


def test_an_over_long_newest_message_is_shortened_in_the_middle() -> None:
    [note, only] = compress(_turns(50, 5000), max_turns=6, max_chars=300)
    assert len(only.content) == 300 and only.content.startswith("1:") and " [...] " in only.content
    assert note.role == "system"
    assert shorten("abcdef", 10) == "abcdef"


def test_expert_prompt_has_few_shot_examples_and_compressed_history() -> None:
    task = ExpertTask(response_id="r", tenant_id="t", deadline_at=deadline_in(30), task_id="t1",
                      category="technical_support", instruction="Fix my wifi", question="Fix my wifi",
                      history=_turns(3000, 3000, 3000),
                      few_shot=[FewShot(question="How do I turn on the wifi?", answer="Press Fn+F5.", distance=0.2)])
    messages = expert_messages(task, history_turns=6, history_chars=4000, few_shot_chars=1000)
    assert messages[0]["role"] == "system" and PROMPTS["technical_support"] in messages[0]["content"]
    assert "Q: How do I turn on the wifi?\nA: Press Fn+F5." in messages[0]["content"]
    assert sum(len(m["content"]) for m in messages[1:-1]) <= 4000 + 100  # history budget (+ the omission note)
    assert messages[-1] == {"role": "user", "content": "Fix my wifi"}
    plain = expert_messages(task.model_copy(update={"few_shot": []}))
    assert "Earlier answers" not in plain[0]["content"]
