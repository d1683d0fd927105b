"""A candidate guardrail rule file tried on recorded traffic: which requests' decisions it would change."""

from __future__ import annotations

import pytest

from moe_core.llm.guardrails import parse
from moe_core.llm.guardrails.simulate import from_record, request_texts, simulate

pytestmark = pytest.mark.unit

IN_FORCE = parse("""
tenants:
  acme:
    output:
      - {id: no-email, detector: email, action: redact}
""", "in force")
CANDIDATE_TEXT = """
tenants:
  acme:
    input:
      - {id: weapons, keywords: [detonator]}
    output:
      - {id: no-iban, detector: iban, action: redact}
  beta:
    input:
      - {id: codename, pattern: "(?i)bluebird"}
"""


def _request(rid: str, tenant: str, *texts: str) -> tuple[str, str, str, dict[str, object]]:
    return rid, tenant, "ChatRequest", {"messages": [{"role": "user", "content": t} for t in texts]}


def _answer(rid: str, tenant: str, content: str, finish: str = "stop") -> tuple[str, str, str, dict[str, object]]:
    return rid, tenant, "Answer", {"content": content, "finish_reason": finish}


def test_only_the_changed_decisions_are_listed_with_their_rules() -> None:
    rows = [
        _request("r1", "acme", "How do I wire a detonators circuit?"),  # plural: still the topic
        _answer("r1", "acme", "I cannot help."),
        _request("r2", "acme", "Where is my invoice?"),
        _answer("r2", "acme", "Write to billing@example.com or pay to DE89370400440532013000."),
        _request("r3", "beta", "Tell me about Project BLUEBIRD"),
        _request("r4", "gamma", "detonator"),  # no rules name gamma: nothing to change
    ]
    result = simulate(from_record(rows), IN_FORCE, parse(CANDIDATE_TEXT, "candidate"), CANDIDATE_TEXT)
    changed = {(c["response_id"], c["direction"]): c for c in result.changed}
    assert set(changed) == {("r1", "input"), ("r2", "output"), ("r3", "input")}
    assert changed[("r1", "input")]["before"] == {"action": "pass", "rules": []}
    assert changed[("r1", "input")]["after"] == {"action": "block", "rules": ["weapons"]}
    # in force the e-mail is redacted; the candidate drops that rule and redacts the IBAN instead
    assert changed[("r2", "output")]["before"] == {"action": "redact", "rules": ["no-email"]}
    assert changed[("r2", "output")]["after"] == {"action": "redact", "rules": ["no-iban"]}
    assert result.summary() == {
        "acme": {"requests": 2, "changed": 2, "to_block": 1, "to_redact": 1, "to_pass": 0},
        "beta": {"requests": 1, "changed": 1, "to_block": 1, "to_redact": 0, "to_pass": 0},
        "gamma": {"requests": 1, "changed": 0, "to_block": 0, "to_redact": 0, "to_pass": 0}}
    assert result.candidate.startswith("sha256:") and "detonator" not in str(result.listed(10))


def test_the_same_rules_change_nothing() -> None:
    rows = [_request("r1", "acme", "a detonator"), _answer("r1", "acme", "mail me: a@b.example")]
    same = parse(CANDIDATE_TEXT, "in force")
    assert simulate(from_record(rows), same, same, CANDIDATE_TEXT).changed == []


def test_the_drafted_answer_is_tried_and_a_refusal_is_not() -> None:
    rows = [
        _request("r1", "acme", "hello"),
        ("r1", "acme", "Draft", {"answer": {"content": "IBAN DE89370400440532013000"}}),
        _answer("r1", "acme", "IBAN [REDACTED:iban]"),  # the final answer, already redacted: not what is tried
        _request("r2", "acme", "hello"),
        _answer("r2", "acme", "This request was blocked by a guardrail (rule x).", "content_filter"),
    ]
    tried = {(r.response_id, r.direction): r.texts for r in from_record(rows)}
    assert tried == {("r1", "input"): ("hello",), ("r2", "input"): ("hello",),
                     ("r1", "output"): ("IBAN DE89370400440532013000",)}


def test_every_role_and_the_tool_call_arguments_are_tried() -> None:
    payload = {"messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"q\": \"detonator\"}"}}]},
        {"role": "tool", "content": "result text", "tool_call_id": "c1"},
        {"role": "user", "content": "go on"}, "not a message"]}
    assert request_texts(payload) == ("You are terse.", "{\"q\": \"detonator\"}", "result text", "go on")
