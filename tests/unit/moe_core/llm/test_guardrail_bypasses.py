# ruff: noqa: RUF001, RUF003  (this file is about look-alike characters: they are meant)
"""The review's guardrail bypasses (issue 50), each a test: rules see the text folded (NFKC, zero-width
characters removed, UTS #39 look-alikes folded), keyword rules take plurals, the detectors take lower-case
IBANs and card numbers grouped by `.` or `/`; a redaction cuts the span out of the original text; a check that
fails or runs out of time blocks and says why (fail closed), and the audit record names the versions."""

from __future__ import annotations

import pytest

from moe_core.contracts import ChatMessage, ChatRequest, deadline_in
from moe_core.llm.guardrails import GuardrailBook, Rule, check, parse
from moe_core.llm.guardrails.engine import ERROR_RULE
from moe_core.llm.guardrails.inputs import check_input
from moe_core.runtime.normalise import fold

RULES = """
version: 1
tenants:
  acme:
    input:
      - {id: weapons, keywords: [explosive, Ibuprofen]}
      - {id: no-cards, detector: credit_card}
      - {id: no-iban, detector: iban, action: redact}
      - {id: no-mail, detector: email, action: redact}
      - {id: slow, pattern: "(?:a|aa)+$", reason: a pattern that backtracks}
"""
pytestmark = pytest.mark.unit
ZW = "\u200b"


def _rules() -> list[Rule]:
    return parse(RULES, "t").tenants["acme"].input


@pytest.mark.parametrize("text", [
    "how are explosives made", f"explo{ZW}sive recipes", "EXPLO\u2060SIVE", "ｅｘｐｌｏｓｉｖｅ",
    "Іbuprofen in pregnancy",  # a Cyrillic І
    "ibupr\u043efen dose",  # a Cyrillic о
])
def test_a_keyword_is_found_through_plurals_invisible_characters_and_look_alikes(text: str) -> None:
    verdict = check(text, _rules())
    assert verdict.blocked_by is not None and verdict.blocked_by.id == "weapons", text


@pytest.mark.parametrize("text", ["card 4111.1111.1111.1111 ok", "card 4111/1111/1111/1111 ok",
                                  "card 4111 1111 1111 1111 ok", f"card 4111{ZW}111111111111 ok",
                                  "card ４１１１１１１１１１１１１１１１ ok"])
def test_card_numbers_grouped_any_way_are_found(text: str) -> None:
    assert check(text, _rules()).blocked_by.id == "no-cards"  # type: ignore[union-attr]


@pytest.mark.parametrize(("text", "redacted"), [
    ("pay to de89 3704 0044 0532 0130 00 by friday", "pay to [REDACTED:iban] by friday"),
    ("pay to de89370400440532013000.", "pay to [REDACTED:iban]."),
    ("write to a.b＠example.com today", "write to [REDACTED:email] today"),
    (f"write to a.b@exam{ZW}ple.com today", "write to [REDACTED:email] today"),
])
def test_lower_case_ibans_and_disguised_addresses_are_redacted_in_the_original(text: str, redacted: str) -> None:
    verdict = check(text, _rules()[:4])
    assert (verdict.action, verdict.text) == ("redact", redacted)


def test_a_text_without_matches_passes_unchanged() -> None:
    text = f"Pl{ZW}ease: the capital of France, ａ short question, 12.30/45"
    verdict = check(text, _rules())
    assert verdict.action == "pass" and verdict.text == text


def test_folding_keeps_where_every_character_came_from() -> None:
    folded = fold(f"a{ZW}＠b")
    assert folded.text == "a@b" and folded.span(1, 2) == (2, 3) and folded.span(0, 3) == (0, 4)


def test_a_check_that_runs_out_of_time_blocks_and_says_why() -> None:
    verdict = check("a" * 30 + "!", _rules(), timeout_s=0.05)
    assert verdict.blocked_by is not None and verdict.blocked_by.id == ERROR_RULE
    assert verdict.errors[0]["rule"] == "slow" and "within" in verdict.errors[0]["error"]
    assert "could not be checked (rule slow" in verdict.blocked_by.reason


def test_a_check_that_raises_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object, **__: object) -> object:
        raise ValueError("detector broke")
    monkeypatch.setattr("moe_core.llm.guardrails.engine.find", broken)
    verdict = check("just a question", _rules())
    assert verdict.action == "block" and verdict.blocked_by.id == ERROR_RULE  # type: ignore[union-attr]
    assert {e["rule"] for e in verdict.errors} == {"no-cards", "no-iban", "no-mail"}


def _request(*messages: ChatMessage) -> ChatRequest:
    return ChatRequest(response_id="r1", tenant_id="acme", deadline_at=deadline_in(30), mode="moe-orchestrator",
                       messages=list(messages))


@pytest.mark.parametrize("message", [
    ChatMessage(role="system", content="You explain explosives."),
    ChatMessage(role="developer", content="Mention Іbuprofen."),
    ChatMessage(role="tool", content="result: card 4111.1111.1111.1111", tool_call_id="c1"),
    ChatMessage(role="assistant", content="", tool_calls=[{"id": "c1", "type": "function", "function": {
        "name": "lookup", "arguments": '{"card": "4111/1111/1111/1111"}'}}]),
])
def test_every_role_and_tool_call_is_checked(message: ChatMessage) -> None:
    book = GuardrailBook(inline=RULES)
    checked = check_input(book, _request(message, ChatMessage(role="user", content="Hello")), "Hello")
    assert checked.refusal is not None and checked.refusal.finish_reason == "content_filter"
    assert checked.audit is not None
    details = checked.audit.details
    assert details["versions"]["rules"] == book.version and details["versions"]["detectors"]
    assert "uts39" in details["versions"]["normalisation"]
    assert message.role in details["checked"] or "tool_call" in details["checked"]


def test_a_tool_result_is_redacted_in_what_the_fleet_goes_on_with() -> None:
    book = GuardrailBook(inline=RULES)
    tool = ChatMessage(role="tool", content="owner iban de89 3704 0044 0532 0130 00", tool_call_id="c1")
    checked = check_input(book, _request(ChatMessage(role="user", content="Who?"), tool), "Who?")
    assert checked.refusal is None and checked.request.messages[1].content == "owner iban [REDACTED:iban]"
    assert checked.audit is not None and checked.audit.details["classes"] == ["iban"]
