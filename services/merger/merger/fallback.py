"""The research fallback: when experts answered with low confidence, search the web before judging.

The merger adds one research task to the request's plan (stored beside the plan in Redis with SET NX,
so exactly one replica adds it and every replica then waits for it) and publishes it to
`tasks.research`; the deadline still bounds the wait."""

from __future__ import annotations

from merger.core import FALLBACK_PREFIX
from moe_core.contracts import Plan, PlannedTask, ResearchTask, TaskResult

TASK_ID = f"{FALLBACK_PREFIX}1"
MAX_QUERIES = 3


def fallback_task(plan: Plan, results: dict[str, TaskResult], enabled: bool, min_remaining_s: float
                  ) -> PlannedTask | None:
    """A research task for the low-confidence expert results, or None when none is wanted."""
    if not enabled or plan.remaining_seconds() < min_remaining_s:
        return None
    if any(t.kind == "research" for t in plan.tasks) or any(r.tool_calls for r in results.values()):
        return None
    low = {r.task_id for r in results.values()
           if r.kind == "expert" and r.confidence == "low" and not r.error and r.content.strip()}
    if not low:
        return None
    queries = [t.instruction for t in plan.tasks if t.task_id in low][:MAX_QUERIES]
    return PlannedTask(task_id=TASK_ID, kind="research", category="research", instruction=plan.question,
                       args={"queries": queries or [plan.question]})


def research_message(plan: Plan, task: PlannedTask) -> ResearchTask:
    queries = [str(q) for q in task.args.get("queries", [])] or [plan.question]
    return ResearchTask(**plan.child_fields(), task_id=task.task_id, question=plan.question, queries=queries,
                        category=task.category)
