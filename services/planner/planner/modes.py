"""What a mode (the model id the client chose) changes in a plan, and which history experts get.

- `-agent`: the expert tasks are exactly code_reviewer and technical_support (forced);
- `-code`: a code_reviewer task is always there;
- `-research`: a web research task comes first (web first);
- every other mode keeps the plan (their instructions reach experts as ExpertTask.mode and the judge
  as Plan.mode; see moe_core.llm.modes).
A preflight plan (a precision tool answers exactly) is left alone by every mode.
"""

from __future__ import annotations

from moe_core.contracts import ChatMessage, ChatRequest, Plan, PlannedTask
from moe_core.llm.modes import get_mode
from planner.settings import PlannerSettings

MAX_INSTRUCTION = 2000
RESEARCH_CATEGORY = "research"


def _free_ids(plan_tasks: list[PlannedTask]) -> list[str]:
    used = {t.task_id for t in plan_tasks}
    return [f"t{n}" for n in range(1, 64) if f"t{n}" not in used]


def apply_mode(plan: Plan, request: ChatRequest, settings: PlannerSettings) -> Plan:
    """The plan with the mode's forced experts and research task (unchanged when the mode adds none)."""
    mode = get_mode(plan.mode)
    if plan.source == "preflight" or not (mode.forced_categories or mode.research_first):
        return plan
    tasks = list(plan.tasks)
    ids = iter(_free_ids(tasks))
    question = plan.question[:MAX_INSTRUCTION]
    if mode.forced_categories:
        experts = [t for t in tasks if t.kind == "expert"]
        others = [t for t in tasks if t.kind != "expert"]
        if mode.replace_experts:
            keep = {t.category: t for t in reversed(experts) if t.category in mode.forced_categories}
            experts = [keep.get(c) or PlannedTask(task_id=next(ids), category=c, instruction=question)
                       for c in mode.forced_categories]
        else:
            present = {t.category for t in experts}
            experts += [PlannedTask(task_id=next(ids), category=c, instruction=question)
                        for c in mode.forced_categories if c not in present]
        tasks = experts + others
    if mode.research_first and not any(t.kind == "research" for t in tasks):
        research = PlannedTask(task_id=next(ids), kind="research", category=RESEARCH_CATEGORY,
                               instruction=question, args={"queries": [question]})
        tasks = [research, *tasks]
    return plan.model_copy(update={"tasks": tasks})


def expert_history(request: ChatRequest, turns: int, *, direct: bool = False) -> list[ChatMessage]:
    """The conversation an expert sees besides its task.

    With tools (agents) the whole conversation as the client sent it — system prompts, tool calls and
    tool results included — so the expert model can continue it; otherwise the last user/assistant
    turns before the question, and for a direct task (no judge after it) the client's system prompts first."""
    if request.tools:
        return list(request.messages)
    system = [m for m in request.messages[:-1] if m.role == "system"] if direct else []
    return system + [m for m in request.messages[:-1] if m.role in ("user", "assistant")][-turns:]
