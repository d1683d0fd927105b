"""Guardrails: per-tenant input and output rules (patterns, PII detectors, blocked topics) from a rules
file (moe_core.llm.guardrails.rules), the engine that applies them (engine), the rules in force in a process
with reload (book), the refusal and audit record of a decision (outcomes) and the review store of blocked
answers and redactions (quarantine). docs/codex.md#guardrails explains them to a data steward."""

from moe_core.llm.guardrails.book import GuardrailBook
from moe_core.llm.guardrails.engine import Verdict, check
from moe_core.llm.guardrails.rules import GuardrailError, Rule, RuleFile, parse

__all__ = ["GuardrailBook", "GuardrailError", "Rule", "RuleFile", "Verdict", "check", "parse"]
