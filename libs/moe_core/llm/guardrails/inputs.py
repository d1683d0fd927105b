"""Input rules, applied by the planner before any model sees the request: the text of every message, of every
role (the system prompt, the Responses API's instructions and input, earlier answers, tool results) and the
arguments of earlier tool calls, against the tenant's `input` rules. A block rule's match (or a check that
failed: fail closed) ends the request with a refusal (and an audit record); redact rules' matches are replaced
in the messages the fleet goes on with (and an audit record says which rules changed what class of text, and
a journal entry, `decision`, for the tenant's review)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moe_core.contracts import Answer, AuditEvent, ChatMessage, ChatRequest
from moe_core.llm.guardrails import outcomes
from moe_core.llm.guardrails.book import GuardrailBook
from moe_core.llm.guardrails.engine import Verdict, check
from moe_core.llm.guardrails.quarantine import Decision
from moe_core.llm.guardrails.rules import Rule
from moe_core.runtime.observability.metrics import GUARDRAIL_DECISIONS


@dataclass(frozen=True)
class InputCheck:
    request: ChatRequest  # the request to go on with (redacted where a redact rule matched)
    refusal: Answer | None = None
    audit: AuditEvent | None = None
    decision: Decision | None = None  # a redaction: the self-correction journal's entry (never the removed text)


class _Checker:
    """One request's messages through the rules; the verdicts and the roles checked are kept for the record."""

    def __init__(self, rules: list[Rule], timeout_s: float) -> None:
        self.rules = rules
        self.timeout_s = timeout_s
        self.verdicts: list[Verdict] = []
        self.roles: set[str] = set()

    def text(self, text: str, role: str) -> str:
        verdict = check(text, self.rules, self.timeout_s)
        self.verdicts.append(verdict)
        self.roles.add(role)
        return verdict.text if verdict.action == "redact" else text

    def message(self, message: ChatMessage) -> ChatMessage:
        update: dict[str, Any] = {}
        if message.content:
            content = self.text(message.content, message.role)
            if content != message.content:
                update["content"] = content
        if message.tool_calls:
            calls = [self._call(call) for call in message.tool_calls]
            if calls != message.tool_calls:
                update["tool_calls"] = calls
        return message.model_copy(update=update) if update else message

    def _call(self, call: dict[str, Any]) -> dict[str, Any]:
        function = call.get("function")
        arguments = function.get("arguments") if isinstance(function, dict) else None
        if not isinstance(function, dict) or not isinstance(arguments, str) or not arguments:
            return call
        checked = self.text(arguments, "tool_call")
        return call if checked == arguments else {**call, "function": {**function, "arguments": checked}}


def check_input(book: GuardrailBook, request: ChatRequest, question: str) -> InputCheck:
    rules = book.rules_for(request.tenant_id, "input")
    if not rules:
        return InputCheck(request)
    checker = _Checker(rules, book.timeout_s)
    messages = [checker.message(m) for m in request.messages]
    for verdict in checker.verdicts:
        for hit in verdict.hits:
            GUARDRAIL_DECISIONS.labels("input", hit.rule.id, hit.rule.action).inc()
    checked = sorted(checker.roles)
    blocked = next((v for v in checker.verdicts if v.blocked_by is not None), None)
    if blocked is not None and blocked.blocked_by is not None:
        if blocked.errors:
            GUARDRAIL_DECISIONS.labels("input", blocked.blocked_by.id, "block").inc()
        refusal = outcomes.refusal_answer(request, request.mode, question, blocked.blocked_by)
        return InputCheck(request, refusal, outcomes.audit(request, blocked, "input", book.versions(), checked))
    redacted = next((v for v in checker.verdicts if v.action == "redact"), None)
    if redacted is None:
        return InputCheck(request)
    return InputCheck(request.model_copy(update={"messages": messages}), None,
                      outcomes.audit(request, redacted, "input", book.versions(), checked),
                      Decision.of(request.response_id, request.tenant_id, "input", redacted, "", ""))
