"""What a guardrail decision produces: the refusal the user gets (in the API's envelope: an Answer with
finish_reason `content_filter`, no error, a message naming the rule) and the audit record saying which rule
and why (rule ids, span classes and counts: never the matched text)."""

from __future__ import annotations

from moe_core.contracts import Answer, AuditEvent, Envelope
from moe_core.knowledge.graph.audit import audit_event
from moe_core.llm.guardrails.engine import Verdict
from moe_core.llm.guardrails.rules import Direction, Rule

ACTOR = "guardrail"


def refusal_text(rule: Rule, direction: Direction) -> str:
    what = "answer" if direction == "output" else "request"
    why = f": {rule.reason}" if rule.reason else ""
    return f"This {what} was blocked by a guardrail (rule {rule.id}){why}."


def refused(answer: Answer, rule: Rule, direction: Direction = "output") -> Answer:
    """The answer replaced by the refusal: nothing of the blocked text, its sources, tool calls or reasoning."""
    return answer.model_copy(update={
        "content": refusal_text(rule, direction), "finish_reason": "content_filter", "error": None,
        "reasoning": "", "sources": [], "tool_calls": [], "cache_key": None, "missing": []})


def refusal_answer(request: Envelope, mode: str, question: str, rule: Rule) -> Answer:
    """An input rule's refusal: the request's answer before any model saw the question."""
    return Answer(**request.child_fields(), mode=mode, content=refusal_text(rule, "input"),
                  finish_reason="content_filter", question=question)


def audit(cause: Envelope, verdict: Verdict, direction: Direction, versions: dict[str, str] | None = None,
          checked: list[str] | None = None) -> AuditEvent:
    """`guardrail.block` or `guardrail.redact`: the deciding rule as subject, every matching rule in details, the
    rules' and detectors' versions, the rules whose check failed (a fail-closed block) and what was checked (the
    messages' roles, or `answer`)."""
    rule = verdict.blocked_by
    subject = rule.id if rule is not None else ",".join(str(c["rule"]) for c in verdict.changes)
    lead = rule or next(h.rule for h in verdict.hits if h.rule.action == "redact")
    reason = lead.reason or f"{lead.span_class} matched rule {lead.id}"
    return audit_event(cause, actor=ACTOR, action=f"guardrail.{verdict.action}", subject=subject, reason=reason,
                       details={"direction": direction, "rules": verdict.summary(),
                                "classes": sorted({h.rule.span_class for h in verdict.hits}),
                                "errors": list(verdict.errors), "versions": versions or {},
                                "checked": checked or []})
