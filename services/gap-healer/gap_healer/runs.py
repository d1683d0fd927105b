"""The graph maintenance runs the scheduler (and the cron job) starts. Each returns what it changed, the
counts stored in the run history.

- lint: every check over MOE_GRAPH_SCHEDULE_TENANT ('*' = every tenant), the same as a LintRequest on the linting
  topic (each deletion an audit event under the response id `lint-<run id>`);
- heal: the open ontology gaps of that tenant (classification failed, or never handled) are classified again."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from gap_healer.settings import GapHealerSettings
from moe_core.contracts import LintRequest, OntologyGap, deadline_in
from moe_core.contracts.messages import LINT_CHECKS
from moe_core.knowledge.graph.measure import count_graph
from moe_core.knowledge.graph.run_history import RunKind

if TYPE_CHECKING:
    from gap_healer.lint import Deletion
    from moe_core.knowledge.graph import GraphDB
    from moe_core.knowledge.graph.gaps import Gaps


class GapHealer(Protocol):
    """What a scheduled run uses of the healer (gap_healer.app.GapHealer, which starts the schedule)."""

    db: GraphDB
    gaps: Gaps

    async def lint(self, request: LintRequest) -> list[Deletion]: ...

    async def heal(self, gap: OntologyGap) -> str: ...

RUN_DEADLINE_S = 3600.0


async def lint_run(healer: GapHealer, settings: GapHealerSettings, run_id: str) -> dict[str, Any]:
    before = await count_graph(healer.db)
    request = LintRequest(response_id=f"lint-{run_id}", tenant_id=settings.graph_schedule_tenant,
                          deadline_at=deadline_in(RUN_DEADLINE_S), checks=list(LINT_CHECKS))
    deletions = await healer.lint(request)
    after = await count_graph(healer.db)
    by_check = Counter(d.check for d in deletions)
    return {"tenant": settings.graph_schedule_tenant, "findings": len(deletions),
            **{check: by_check.get(check, 0) for check in LINT_CHECKS},
            "relations_deleted": sum(1 for d in deletions if d.kind == "relation"),
            "entities_deleted": sum(1 for d in deletions if d.kind == "entity"),
            "tenants": len({d.tenant for d in deletions}),
            "entities_before": before.entities, "entities_after": after.entities,
            "relations_before": before.relations, "relations_after": after.relations}


async def heal_run(healer: GapHealer, settings: GapHealerSettings, run_id: str) -> dict[str, Any]:
    """The open gaps healed MOE_GAP_BATCH_TERMS at a time, at once, so their terms share classification calls
    (gap_healer.batch); a gap that fails the run fails it after its group is done."""
    gaps = await healer.gaps.open(settings.graph_schedule_tenant, settings.graph_heal_retry_after_s,
                                  settings.graph_heal_batch)
    outcomes: Counter[str] = Counter()
    for start in range(0, len(gaps), settings.gap_batch_terms):
        group = [OntologyGap(response_id=gap.get("response_id") or f"heal-{run_id}", tenant_id=gap["tenant"],
                             deadline_at=deadline_in(RUN_DEADLINE_S), term=gap["term"],
                             context=gap.get("context") or "", asked_by=gap.get("asked_by"))
                 for gap in gaps[start:start + settings.gap_batch_terms]]
        done = await asyncio.gather(*(healer.heal(message) for message in group), return_exceptions=True)
        for outcome in done:
            if isinstance(outcome, BaseException):
                raise outcome
            outcomes[outcome] += 1
    left = (await healer.gaps.counts(settings.graph_schedule_tenant))["open"]
    kinds = ("healed", "rejected", "quarantined", "failed", "known")
    return {"retried": len(gaps), **{k: outcomes.get(k, 0) for k in kinds}, "open_after": left}


RUNNERS: dict[RunKind, Callable[[GapHealer, GapHealerSettings, str], Awaitable[dict[str, Any]]]] = {
    "lint": lint_run, "heal": heal_run,
}
