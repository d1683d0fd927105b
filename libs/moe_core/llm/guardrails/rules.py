"""The guardrail rules file (policy/guardrails.yaml, or the file MOE_GUARDRAILS_FILE names, or its text in
MOE_GUARDRAILS): per tenant, rules on the question (`input`) and on the answer (`output`).

    version: 1
    tenants:
      acme:
        output:
          - id: no-iban
            detector: iban          # email | iban | credit_card | phone | de_tax_id
            action: redact          # block (the default) or redact
            reason: account numbers never leave in an answer
          - id: internal-codename
            pattern: "(?i)project\\s+bluebird"
          - id: weapons
            keywords: [explosive, detonator]
        input:
          - id: no-cards-in
            detector: credit_card

A rule has exactly one of `pattern` (a regular expression), `detector` (a PII detector,
moe_core.llm.guardrails.detectors) or `keywords` (a blocked topic: any of the words, case-insensitive, as whole
words, each also with a plural `s` or `es`: `explosive` hits "explosives"). Every rule sees the text folded
(moe_core.runtime.normalise: NFKC, zero-width characters removed, look-alike letters folded); keywords
are folded the same way. `redact` replaces what matched with `[REDACTED:<class>]` and lets the rest through; it is for
patterns and detectors (a blocked topic is not a span to cut out, so `keywords` rules only block).

A file that does not parse or validate raises GuardrailError naming the file, the line and what is wrong.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Any, Literal

import regex as regex_module
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from moe_core.llm.guardrails.detectors import Detector
from moe_core.runtime.normalise import fold_word

RULE_ID = r"^[a-z0-9][a-z0-9._-]{0,63}$"
Action = Literal["block", "redact"]
Direction = Literal["input", "output"]


class GuardrailError(ValueError):
    """The rules file cannot be read, is not YAML, or a rule is invalid (the message names the line)."""


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=RULE_ID, description="Named in refusals, audit records and metrics")
    pattern: str | None = Field(default=None, max_length=2000, description="A Python regular expression")
    detector: Detector | None = None
    keywords: list[str] | None = Field(default=None, min_length=1, max_length=500)
    topic: str = Field(default="", max_length=100, description="keywords: the topic's name (default: the id)")
    action: Action = "block"
    reason: str = Field(default="", max_length=500, description="Why the rule exists (audit, review)")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                regex_module.compile(value)
            except (re.error, regex_module.error) as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @field_validator("keywords")
    @classmethod
    def _words(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not w.strip() for w in value):
            raise ValueError("a keyword is empty")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Rule:
        kinds = [k for k in ("pattern", "detector", "keywords") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"rule {self.id}: exactly one of pattern, detector, keywords (found {kinds or 'none'})")
        if self.keywords is not None and self.action == "redact":
            raise ValueError(f"rule {self.id}: a blocked topic (keywords) can only block, not redact")
        return self

    @property
    def span_class(self) -> str:
        """What kind of text matched, never the text: the detector, `pattern` or `topic/<name>`."""
        if self.detector is not None:
            return self.detector
        return f"topic/{self.topic or self.id}" if self.keywords is not None else "pattern"

    @cached_property
    def regex(self) -> regex_module.Pattern[str] | None:
        """A pattern as written; keywords folded (matched against the folded, case-folded text), plurals too."""
        if self.pattern is not None:
            return regex_module.compile(self.pattern)
        if self.keywords is not None:
            words = sorted({fold_word(w.strip()) for w in self.keywords}, key=len, reverse=True)
            alternatives = "|".join(regex_module.escape(w) for w in words)
            return regex_module.compile(r"(?<!\w)(?:" + alternatives + r")(?:e?s)?(?!\w)", regex_module.IGNORECASE)
        return None


class TenantRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    input: list[Rule] = Field(default_factory=list, description="Checked before any model sees the question")
    output: list[Rule] = Field(default_factory=list, description="Checked before the answer reaches the user")

    def of(self, direction: Direction) -> list[Rule]:
        return self.input if direction == "input" else self.output


class RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    tenants: dict[str, TenantRules] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique_ids(self) -> RuleFile:
        for tenant, rules in self.tenants.items():
            ids = [r.id for r in (*rules.input, *rules.output)]
            repeated = sorted({i for i in ids if ids.count(i) > 1})
            if repeated:
                raise ValueError(f"tenant {tenant}: rule ids must be unique, repeated: {', '.join(repeated)}")
        return self


def parse(text: str, source: str) -> RuleFile:
    """The rules of `text` (from `source`, named in errors), or GuardrailError with the line."""
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise GuardrailError(f"guardrails {source}{where}: not valid YAML: {problem}") from None
    try:
        return RuleFile.model_validate(data if data is not None else {})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "(top)"
        raise GuardrailError(f"guardrails {source} line {_line(node, first['loc'])}: {loc}: {first['msg']}") from None


def _line(node: yaml.Node | None, loc: tuple[Any, ...]) -> int:
    """The line (1-based) of the deepest YAML node the error's location reaches."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if pair is None:
                break
            line, node = pair[0].start_mark.line + 1, pair[1]  # the key's line (an unknown key is the error)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
