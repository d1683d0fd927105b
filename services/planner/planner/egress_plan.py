"""The plan keeps to its request's egress decision (issue 50): the planner offers the planner model, the preflight
and the rescue only the tools the decision permits, and web research only when it permits research; a task that
still names a denied tool or research (a cached plan made for another class, a mode's forced research) is left out
of the plan, so no task is sent that mcp or research would refuse. Why each was left out is the request's egress
record (`tools.deny` and the research decision, with their rules, policy/opa/egress.rego), which names them as
`left_out_of_plan` too."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from moe_core.contracts import ChatRequest, Plan, PlannedTask
from moe_core.policy.egress import RESEARCH, may_research, may_use_tool, tool_egress
from planner.tool_catalogue import ToolCatalogue

log = logging.getLogger(__name__)

MAX_INSTRUCTION = 2000
MAX_DECISIONS = 256  # distinct egress decisions kept per catalogue (a few per data class and template)


@dataclass(frozen=True)
class _Decided:
    offered: ToolCatalogue
    left_out: tuple[str, ...]
    suffix: str


def _decided(tools: ToolCatalogue, egress: list[str] | None) -> _Decided:
    """What a decision permits and leaves out, worked out once per catalogue and decision: a request asks up to
    six times, and requests of a class share a decision (issue 52: ~190 tool checks a request before)."""
    key = None if egress is None else tuple(egress)
    found: _Decided | None = tools.memo.get(key)
    if found is None:
        denied = [tool_egress(name) for name in tools.names if not may_use_tool(egress, name)]
        denied += [] if may_research(egress) else [RESEARCH]
        suffix = "!" + hashlib.sha256(",".join(denied).encode()).hexdigest()[:12] if denied else ""
        if len(tools.memo) >= MAX_DECISIONS:
            tools.memo.clear()
        found = tools.memo[key] = _Decided(tools.only(lambda name: may_use_tool(egress, name)), tuple(denied), suffix)
    return found


def offered_tools(tools: ToolCatalogue, request: ChatRequest) -> ToolCatalogue:
    """The tools the planner may plan for `request`: those its egress decision permits."""
    return _decided(tools, request.egress).offered


def left_out(tools: ToolCatalogue, egress: list[str] | None) -> list[str]:
    """What the planner leaves out of a request's plan by its egress decision (`tool:<name>`, `research`)."""
    return list(_decided(tools, egress).left_out)


def scope_suffix(tools: ToolCatalogue, request: ChatRequest) -> str:
    """The plan cache's scope mark of a request whose decision denies tools or research (a plan made without them
    is not served to a request that may use them); "" when nothing is denied (the scope as before)."""
    return _decided(tools, request.egress).suffix


def keep_to_egress(plan: Plan, request: ChatRequest) -> Plan:
    """The plan without the tasks its request's egress decision denies (a denied tool's task, research when research
    is denied); an answering task (a general expert for the question) when none is left."""
    kept = [t for t in plan.tasks if _permitted(t, request.egress)]
    if len(kept) == len(plan.tasks):
        return plan
    log.info("left out of the plan by its egress decision (class %s): %s", request.data_class,
             [t.tool or t.kind for t in plan.tasks if t not in kept])
    if not any(t.kind in ("expert", "tool") for t in kept):
        used = {t.task_id for t in kept}
        task_id = next(f"t{n}" for n in range(1, 64) if f"t{n}" not in used)
        kept.append(PlannedTask(task_id=task_id, category="general", instruction=plan.question[:MAX_INSTRUCTION]
                                or "Answer the question."))
    return plan.model_copy(update={"tasks": kept})


def _permitted(task: PlannedTask, egress: list[str] | None) -> bool:
    if task.kind == "tool":  # a chain's every step too
        steps = task.args.get("steps") if task.tool == "chain" else None
        names = [s.get("tool") for s in steps if isinstance(s, dict)] if isinstance(steps, list) else []
        return all(may_use_tool(egress, str(name or "")) for name in [task.tool, *names])
    return task.kind != RESEARCH or may_research(egress)
