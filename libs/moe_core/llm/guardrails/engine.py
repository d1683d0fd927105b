"""The rule engine: one text against a tenant's rules of one direction -> a Verdict (pass, redact or block).

Every rule is applied; a matching `block` rule blocks (the first in the file's order is the one named to the
user), else the matches of `redact` rules are replaced by `[REDACTED:<class>]`. A Verdict names rules and
span classes and counts, never the matched text: it goes to logs, metrics and the audit record as it is.

Rules see the text folded (moe_core.runtime.normalise); a match is redacted in the original text.
Fail closed: a rule whose check raises or runs past `timeout_s` (the `regex` module's timeout) blocks the text,
by the rule `guardrail-error` whose reason names the failing rule and what went wrong (`Verdict.errors`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from moe_core.llm.guardrails import detectors
from moe_core.llm.guardrails.detectors import Span, find
from moe_core.llm.guardrails.rules import Rule
from moe_core.runtime.normalise import Folded, fold
from moe_core.runtime.normalise import version as folding_version

log = logging.getLogger(__name__)
DEFAULT_TIMEOUT_S = 2.0
ERROR_RULE = "guardrail-error"


def versions() -> dict[str, str]:
    """What decided besides the rules file: the detectors' and the folding's versions (in every audit record)."""
    return {"detectors": detectors.VERSION, "normalisation": folding_version()}


def error_rule(failed: str, what: str) -> Rule:
    """The rule a failed check blocks by: its reason says which rule failed and how."""
    return Rule(id=ERROR_RULE, pattern="(?!)", reason=f"the text could not be checked (rule {failed}: {what}), "
                                                      "so it is blocked")


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
    errors: tuple[dict[str, str], ...] = field(default=())  # rules whose check failed: rule, error

    @property
    def action(self) -> str:
        if self.blocked_by is not None:
            return "block"
        return "redact" if self.changes else "pass"

    def summary(self) -> list[dict[str, object]]:
        return [h.summary() for h in self.hits]


class _Views:
    """The folded text (detectors, patterns) and its case-folded form (keywords), built once per check."""

    def __init__(self, text: str) -> None:
        self.folded = fold(text)
        self._words: Folded | None = None

    def of(self, rule: Rule) -> Folded:
        if rule.keywords is None:
            return self.folded
        if self._words is None:
            self._words = self.folded.mapped(str.casefold)
        return self._words


def spans(rule: Rule, text: str, timeout_s: float | None = None, views: _Views | None = None) -> list[Span]:
    """Where the rule matches `text` (spans of the original), matched on the folded text."""
    view = (views or _Views(text)).of(rule)
    if rule.detector is not None:
        found = list(find(rule.detector, view.text, timeout_s))
    else:
        assert rule.regex is not None
        found = [m.span() for m in rule.regex.finditer(view.text, timeout=timeout_s) if m.end() > m.start()]
    return [view.span(a, b) for a, b in found]


def _hits(text: str, rules: list[Rule], timeout_s: float) -> tuple[tuple[Hit, ...], tuple[dict[str, str], ...]]:
    views = _Views(text)
    hits: list[Hit] = []
    errors: list[dict[str, str]] = []
    for rule in rules:
        try:
            found = spans(rule, text, timeout_s, views)
        except TimeoutError:
            errors.append({"rule": rule.id, "error": f"no result within {timeout_s:g}s"})
            continue
        except Exception as exc:  # any failure of a check blocks: fail closed
            log.warning("guardrail rule %s failed: %s", rule.id, type(exc).__name__)  # never the text
            errors.append({"rule": rule.id, "error": type(exc).__name__})
            continue
        if found:
            hits.append(Hit(rule, tuple(found)))
    return tuple(hits), tuple(errors)


def check(text: str, rules: list[Rule], timeout_s: float = DEFAULT_TIMEOUT_S) -> Verdict:
    """The verdict of `rules` on `text`; a rule that fails or times out blocks (`guardrail-error`)."""
    try:
        hits, errors = _hits(text, rules, timeout_s)
    except Exception as exc:  # folding itself failed: nothing was checked
        hits, errors = (), ({"rule": "*", "error": type(exc).__name__},)
    if errors:
        return Verdict(hits, text, error_rule(errors[0]["rule"], errors[0]["error"]), errors=errors)
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
