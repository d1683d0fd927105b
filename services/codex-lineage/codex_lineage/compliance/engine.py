"""Evaluates the rule sets against live evidence: one report (every framework, every rule with its status,
summary and evidence), and the metric moe_compliance_rule_status{framework,rule} (1 pass, 0 fail,
-1 not applicable). Rule files are re-read when they change; a broken change keeps the previous rules and is
named in the report (rules_error) and the log."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from codex_lineage.compliance.checks import CHECKS, NAMES
from codex_lineage.compliance.outcome import STATUS_VALUE, Outcome
from codex_lineage.compliance.rules import RulesError, RuleSet, fingerprint, load_all
from codex_lineage.compliance.sources import Sources
from moe_core.runtime.observability.metrics import COMPLIANCE_RULE_STATUS

log = logging.getLogger(__name__)
CHECK_TIMEOUT_S = 30.0


class Compliance:
    def __init__(self, directory: Path) -> None:
        """Loads the rules now: a rule file that does not parse raises RulesError (file:line) and the service
        does not start."""
        self.directory = directory
        self.rule_sets: list[RuleSet] = load_all(directory, NAMES)
        self._seen = fingerprint(directory)
        self.rules_error = ""
        self._lock = asyncio.Lock()

    def reload(self, force: bool = False) -> bool:
        """Re-read the files if they changed (or `force`); on an error the previous rules stay and the error is
        kept (and raised). True when new rules were loaded."""
        current = fingerprint(self.directory)
        if current == self._seen and not force:
            return False
        self._seen = current
        try:
            self.rule_sets = load_all(self.directory, NAMES)
        except RulesError as exc:
            self.rules_error = str(exc)
            log.error("compliance rules not reloaded, the previous ones stay: %s", exc)
            raise
        self.rules_error = ""
        COMPLIANCE_RULE_STATUS.clear()  # a removed rule's series goes with it
        log.info("compliance rules reloaded: %s", ", ".join(s.framework for s in self.rule_sets))
        return True

    def framework(self, name: str) -> RuleSet | None:
        return next((s for s in self.rule_sets if s.framework == name), None)

    async def evaluate(self, sources: Sources, framework: str | None = None) -> dict[str, Any]:
        async with self._lock:
            try:
                self.reload()
            except RulesError:
                pass  # kept in rules_error, shown in the report
            sets = [s for s in self.rule_sets if framework is None or s.framework == framework]
            frameworks = [await self._evaluate_set(rule_set, sources) for rule_set in sets]
        totals = {status: 0 for status in STATUS_VALUE}
        for fw in frameworks:
            for rule in fw["rules"]:
                totals[rule["status"]] += 1
        return {"object": "compliance.report", "generated_at": _now(), "summary": totals,
                "rules_error": self.rules_error or None, "frameworks": frameworks}

    async def _evaluate_set(self, rule_set: RuleSet, sources: Sources) -> dict[str, Any]:
        rules = []
        for rule in rule_set.rules:
            outcome = await _run(CHECKS[rule.check], sources, rule.params)
            COMPLIANCE_RULE_STATUS.labels(rule_set.framework, rule.id).set(STATUS_VALUE[outcome.status])
            rules.append({"id": rule.id, "ref": rule.ref, "title": rule.title, "requirement": rule.requirement,
                          "check": rule.check, "params": rule.params, "status": outcome.status,
                          "summary": outcome.summary, "evidence": outcome.evidence})
        return {"framework": rule_set.framework, "title": rule_set.title, "version": rule_set.version,
                "source": rule_set.source, "digest": rule_set.digest, "rules": rules}


async def _run(check: Any, sources: Sources, params: dict[str, Any]) -> Outcome:
    """A check that cannot gather its evidence fails, saying why: missing evidence is not a pass."""
    try:
        outcome: Outcome = await asyncio.wait_for(check(sources, params), CHECK_TIMEOUT_S)
        return outcome
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # any source may be down; the report must still come
        log.warning("compliance check %s could not gather its evidence: %s", getattr(check, "__name__", check), exc)
        return Outcome("fail", f"the evidence could not be gathered: {type(exc).__name__}: {exc}",
                       {"error": f"{type(exc).__name__}: {exc}"})


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
