"""Knowledge-graph context for a plan: one graph task (graph-rag) added to every non-trivial plan that
is not answered by a tool or the cache alone."""

from __future__ import annotations

from moe_core.contracts import ChatRequest, Plan, PlannedTask
from planner.settings import PlannerSettings

GRAPH_CATEGORY = "knowledge_graph"
# Plans that need no context: a precision tool answers exactly, a cache hit is already an answer.
NO_GRAPH_SOURCES = frozenset({"preflight", "cache"})
MAX_INSTRUCTION = 2000


def needs_graph(plan: Plan, settings: PlannerSettings) -> bool:
    if not settings.planner_graph_tasks or plan.source in NO_GRAPH_SOURCES or plan.complexity == "trivial":
        return False
    if all(t.kind == "tool" for t in plan.tasks):
        return False
    return not any(t.kind == "graph" for t in plan.tasks)


def add_graph_task(plan: Plan, request: ChatRequest, settings: PlannerSettings) -> Plan:
    """The plan plus one PlannedTask(kind="graph", category="knowledge_graph"), when it applies."""
    if not needs_graph(plan, settings):
        return plan
    used = {t.task_id for t in plan.tasks}
    n = len(plan.tasks) + 1
    while f"t{n}" in used:
        n += 1
    task = PlannedTask(task_id=f"t{n}", kind="graph", category=GRAPH_CATEGORY,
                       instruction=f"Knowledge-graph context for: {plan.question}"[:MAX_INSTRUCTION])
    return plan.model_copy(update={"tasks": [*plan.tasks, task]})
