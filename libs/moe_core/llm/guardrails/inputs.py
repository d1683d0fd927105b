"""Input rules, applied by the planner before any model sees the question: the text of the user's messages
against the tenant's `input` rules. A block rule's match ends the request with a refusal (and an audit
record); redact rules' matches are replaced in the messages the fleet goes on with (and an audit record
says which rules changed what class of text, and a journal entry, `decision`, for the tenant's review)."""

from __future__ import annotations

from dataclasses import dataclass

from moe_core.contracts import Answer, AuditEvent, ChatRequest
from moe_core.llm.guardrails import outcomes
from moe_core.llm.guardrails.book import GuardrailBook
from moe_core.llm.guardrails.engine import Verdict, check
from moe_core.llm.guardrails.quarantine import Decision
from moe_core.runtime.observability.metrics import GUARDRAIL_DECISIONS


@dataclass(frozen=True)
class InputCheck:
    request: ChatRequest  # the request to go on with (redacted where a redact rule matched)
    refusal: Answer | None = None
    audit: AuditEvent | None = None
    decision: Decision | None = None  # a redaction: the self-correction journal's entry (never the removed text)


def check_input(book: GuardrailBook, request: ChatRequest, question: str) -> InputCheck:
    rules = book.rules_for(request.tenant_id, "input")
    if not rules:
        return InputCheck(request)
    verdicts: list[Verdict] = []
    messages = list(request.messages)
    for i, message in enumerate(messages):
        if message.role != "user" or not message.content:
            continue
        verdict = check(message.content, rules)
        verdicts.append(verdict)
        if verdict.action == "redact":
            messages[i] = message.model_copy(update={"content": verdict.text})
    for verdict in verdicts:
        for hit in verdict.hits:
            GUARDRAIL_DECISIONS.labels("input", hit.rule.id, hit.rule.action).inc()
    blocked = next((v for v in verdicts if v.blocked_by is not None), None)
    if blocked is not None and blocked.blocked_by is not None:
        refusal = outcomes.refusal_answer(request, request.mode, question, blocked.blocked_by)
        return InputCheck(request, refusal, outcomes.audit(request, blocked, "input"))
    redacted = next((v for v in verdicts if v.action == "redact"), None)
    if redacted is None:
        return InputCheck(request)
    return InputCheck(request.model_copy(update={"messages": messages}), None,
                      outcomes.audit(request, redacted, "input"),
                      Decision.of(request.response_id, request.tenant_id, "input", redacted, "", ""))
