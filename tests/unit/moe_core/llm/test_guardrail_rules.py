"""The guardrail rule engine: the rules file (errors name the line), each PII detector against published
valid and invalid examples, block and redact verdicts, and reload keeping the previous rules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from moe_core.llm.guardrails import GuardrailBook, GuardrailError, check, parse
from moe_core.llm.guardrails.detectors import de_tax_id_valid, find, iban_valid, luhn_valid
from moe_core.runtime.observability.metrics import GUARDRAIL_RELOAD_ERRORS

pytestmark = pytest.mark.unit

GOOD = """\
version: 1
tenants:
  acme:
    input:
      - {id: no-cards, detector: credit_card}
    output:
      - id: codename
        pattern: "(?i)project\\\\s+bluebird"
        reason: internal
      - {id: no-iban, detector: iban, action: redact}
      - {id: weapons, keywords: [explosive, Detonator]}
"""


def test_a_valid_file_gives_each_tenant_its_rules() -> None:
    rules = parse(GOOD, "test")
    acme = rules.tenants["acme"]
    assert [r.id for r in acme.output] == ["codename", "no-iban", "weapons"]
    assert [r.id for r in acme.input] == ["no-cards"]
    assert acme.output[2].span_class == "topic/weapons"


@pytest.mark.parametrize(("text", "line", "words"), [
    (GOOD.replace("detector: iban", "detector: passport"), 10, "detector"),
    (GOOD.replace('pattern: "(?i)project\\\\s+bluebird"', 'pattern: "(unclosed"'), 8, "regular expression"),
    (GOOD.replace("{id: weapons, keywords: [explosive, Detonator]}",
                  "{id: weapons, keywords: [explosive], action: redact}"), 11, "only block"),
    (GOOD.replace("{id: no-iban, detector: iban, action: redact}", "{id: no-iban, action: redact}"), 10,
     "exactly one of"),
    (GOOD.replace("  acme:\n    input:", "  acme:\n    inputs:"), 4, "inputs"),
    (GOOD.replace("reason: internal", "reason: internal: x: y"), 9, "not valid YAML"),
])
def test_a_file_that_does_not_parse_is_refused_naming_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(GuardrailError) as err:
        parse(text, "policy/guardrails.yaml")
    message = str(err.value)
    assert f"guardrails policy/guardrails.yaml line {line}:" in message, message
    assert words in message


def test_repeated_rule_ids_are_refused() -> None:
    with pytest.raises(GuardrailError, match="repeated: no-cards"):
        parse(GOOD.replace("{id: no-iban,", "{id: no-cards,"), "f")


@pytest.mark.parametrize(("valid", "candidate"), [
    (iban_valid, "DE89 3704 0044 0532 0130 00"), (iban_valid, "GB82 WEST 1234 5698 7654 32"),
    (luhn_valid, "4111111111111111"), (luhn_valid, "5500005555555559"),
    (de_tax_id_valid, "36574261809"), (de_tax_id_valid, "86095742719"),
])
def test_checksums_accept_published_valid_numbers(valid: object, candidate: str) -> None:
    assert valid(candidate)  # type: ignore[operator]


@pytest.mark.parametrize(("valid", "candidate"), [
    (iban_valid, "DE89 3704 0044 0532 0130 01"), (iban_valid, "GB82 WEST 1234 5698 7654 33"),
    (luhn_valid, "4111111111111112"),
    (de_tax_id_valid, "36574261808"), (de_tax_id_valid, "12345678901"), (de_tax_id_valid, "06574261809"),
])
def test_checksums_refuse_a_changed_digit(valid: object, candidate: str) -> None:
    assert not valid(candidate)  # type: ignore[operator]


TEXT = ("Write to a.b@example.org, pay to DE89 3704 0044 0532 0130 00 with card 4111-1111-1111-1111, call "
        "+49 30 1234567 or 030 12345678; tax id 36 574 261 809. In 2024 we had 1500 users and order 123456789.")


@pytest.mark.parametrize(("detector", "found"), [
    ("email", ["a.b@example.org"]),
    ("iban", ["DE89 3704 0044 0532 0130 00"]),
    ("credit_card", ["4111-1111-1111-1111"]),
    ("phone", ["+49 30 1234567", "030 12345678"]),
    ("de_tax_id", ["36 574 261 809"]),
])
def test_each_detector_finds_its_kind_and_nothing_else(detector: str, found: list[str]) -> None:
    assert [TEXT[a:b] for a, b in find(detector, TEXT)] == found  # type: ignore[arg-type]


def test_a_number_failing_its_checksum_is_not_reported() -> None:
    assert list(find("iban", "IBAN DE89 3704 0044 0532 0130 01")) == []
    assert list(find("credit_card", "card 4111 1111 1111 1112")) == []


def test_a_block_rule_blocks_and_names_itself_without_the_text() -> None:
    rules = parse(GOOD, "t").tenants["acme"].output
    verdict = check("The plan is Project  Bluebird, IBAN DE89 3704 0044 0532 0130 00.", rules)
    assert verdict.action == "block" and verdict.blocked_by is not None and verdict.blocked_by.id == "codename"
    summary = verdict.summary()
    assert {s["rule"] for s in summary} == {"codename", "no-iban"}
    assert "Bluebird" not in repr(summary) and "DE89" not in repr(summary)


def test_redact_replaces_only_the_matched_span_and_journals_the_change() -> None:
    rules = parse(GOOD, "t").tenants["acme"].output
    verdict = check("Pay to DE89 3704 0044 0532 0130 00 today.", rules)
    assert verdict.action == "redact"
    assert verdict.text == "Pay to [REDACTED:iban] today."
    assert verdict.changes == ({"rule": "no-iban", "action": "redact", "class": "iban", "count": 1, "reason": ""},)


def test_keywords_match_whole_words_and_their_plurals_in_any_case() -> None:
    rules = parse(GOOD, "t").tenants["acme"].output
    assert check("How does a DETONATOR work?", rules).action == "block"
    assert check("Detonators? Tell me.", rules).action == "block", "a plural is the same topic"
    assert check("No: this is about explosiveness.", rules).action == "pass", "a longer word is another word"


def test_a_clean_text_passes_unchanged() -> None:
    verdict = check("Paris is the capital of France.", parse(GOOD, "t").tenants["acme"].output)
    assert verdict.action == "pass" and verdict.text == "Paris is the capital of France." and not verdict.hits


def test_reload_takes_a_valid_change_and_keeps_the_previous_rules_on_a_bad_one(tmp_path: Path) -> None:
    path = tmp_path / "guardrails.yaml"
    path.write_text(GOOD)
    book = GuardrailBook(str(path), reload_s=0, service="test-reload")  # looks at every use
    assert book.guards("acme") and not book.guards("other")

    path.write_text(GOOD.replace("  acme:", "  other:"))
    os.utime(path, (1, 1))  # a new mtime whatever the clock's resolution
    assert book.guards("other") and not book.guards("acme")

    errors = GUARDRAIL_RELOAD_ERRORS.labels("test-reload")._value.get()
    path.write_text(GOOD.replace("  acme:", "  other:").replace("detector: iban", "detector: passport"))
    os.utime(path, (2, 2))
    assert book.guards("other"), "the previous rules stay in force"
    assert [r.id for r in book.rules_for("other", "output")] == ["codename", "no-iban", "weapons"]
    assert GUARDRAIL_RELOAD_ERRORS.labels("test-reload")._value.get() == errors + 1


def test_a_bad_file_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "guardrails.yaml"
    path.write_text(GOOD.replace("detector: iban", "detector: passport"))
    with pytest.raises(GuardrailError, match="line 10"):
        GuardrailBook(str(path))


def test_the_repository_default_guards_no_tenant() -> None:
    book = GuardrailBook()
    assert book.path is not None and book.path.name == "guardrails.yaml"
    assert book.rules.tenants == {}
