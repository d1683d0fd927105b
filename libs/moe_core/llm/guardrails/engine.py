"""The rule engine: one text against a tenant's rules of one direction -> a Verdict (pass, redact or block).

Every rule is applied; a matching `block` rule blocks (the first in the file's order is the one named to the
user), else the matches of `redact` rules are replaced by `[REDACTED:<class>]`. A Verdict names rules and
span classes and counts, never the matched text: it goes to logs, metrics and the audit record as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from moe_core.llm.guardrails.detectors import Span, find
from moe_core.llm.guardrails.rules import Rule


@dataclass(frozen=True)
class Hit:
    rule: Rule
    spans: tuple[Span, ...]

    def summary(self) -> dict[str, object]:
        return {"rule": self.rule.id, "action": self.rule.action, "class": self.rule.span_class,
                "count": len(self.spans), "reason": self.rule.reason}


@dataclass(frozen=True)
class Verdict:
    hits: tuple[Hit, ...] = ()
    text: str = ""  # the text to send: the original, or redacted
    blocked_by: Rule | None = None
    changes: tuple[dict[str, object], ...] = field(default=())  # redactions: rule, class, count, reason

    @property
    def action(self) -> str:
        if self.blocked_by is not None:
            return "block"
        return "redact" if self.changes else "pass"

    def summary(self) -> list[dict[str, object]]:
        return [h.summary() for h in self.hits]


def spans(rule: Rule, text: str) -> list[Span]:
    if rule.detector is not None:
        return list(find(rule.detector, text))
    assert rule.regex is not None
    return [m.span() for m in rule.regex.finditer(text) if m.end() > m.start()]


def check(text: str, rules: list[Rule]) -> Verdict:
    hits = tuple(Hit(rule, tuple(found)) for rule in rules if (found := spans(rule, text)))
    blocking = next((h.rule for h in hits if h.rule.action == "block"), None)
    if blocking is not None:
        return Verdict(hits, text, blocking)
    redactions = [h for h in hits if h.rule.action == "redact"]
    if not redactions:
        return Verdict(hits, text)
    return Verdict(hits, redact(text, redactions), None, tuple(h.summary() for h in redactions))


def redact(text: str, hits: list[Hit]) -> str:
    """Replace every matched span (overlaps merged; the first rule's class names a merged span)."""
    marked = sorted((s, h.rule.span_class) for h in hits for s in h.spans)
    out, pos = [], 0
    merged: list[tuple[int, int, str]] = []
    for (start, end), cls in marked:
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]), merged[-1][2])
        else:
            merged.append((start, end, cls))
    for start, end, cls in merged:
        out.append(text[pos:start])
        out.append(f"[REDACTED:{cls}]")
        pos = end
    out.append(text[pos:])
    return "".join(out)
