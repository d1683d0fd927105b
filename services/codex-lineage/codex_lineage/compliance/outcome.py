"""What a check returns: pass / fail / not_applicable, a one-line summary and the evidence it used."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from codex_lineage.compliance.sources import Sources

Status = Literal["pass", "fail", "not_applicable"]
STATUS_VALUE: dict[str, int] = {"pass": 1, "fail": 0, "not_applicable": -1}  # moe_compliance_rule_status


@dataclass
class Outcome:
    status: Status
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)


Check = Callable[[Sources, dict[str, Any]], Awaitable[Outcome]]


def verdict(ok: bool, passed: str, failed: str, evidence: dict[str, Any]) -> Outcome:
    return Outcome("pass" if ok else "fail", passed if ok else failed, evidence)
