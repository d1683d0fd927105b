"""Pure merging logic: completeness, usage, the answer's common fields, partial and failed answers.
(The fast path, priorities and prompts are in synthesis.py.)"""

from __future__ import annotations

from typing import Any

from moe_core.contracts import Answer, ErrorInfo, ModelUse, Plan, Source, TaskResult, Usage

_RANK = {"high": 0, "medium": 1, "low": 2}


def missing_tasks(plan: Plan, results: dict[str, TaskResult]) -> list[str]:
    return [t.task_id for t in plan.tasks if t.task_id not in results]


def unanswered(plan: Plan, results: dict[str, TaskResult]) -> list[str]:
    """Categories of the plan's tasks that have no usable result (not arrived, failed or empty)."""
    good = {r.task_id for r in usable(results)}
    return [t.category for t in plan.tasks if t.task_id not in good]


def with_gaps_note(content: str, gaps: list[str]) -> str:
    return f"{content}\n\n(Incomplete: no answer in time from: {', '.join(gaps)}.)" if gaps else content


def usable(results: dict[str, TaskResult]) -> list[TaskResult]:
    good = [r for r in results.values() if not r.error and r.content.strip()]
    return sorted(good, key=lambda r: (_RANK[r.confidence], r.task_id))


def total_usage(plan: Plan, results: dict[str, TaskResult], extra: Usage | None = None) -> Usage:
    usage = plan.usage
    for result in results.values():
        usage = usage + result.usage
    return usage + extra if extra else usage


def model_calls(plan: Plan, results: dict[str, TaskResult]) -> int:
    calls = 1 if plan.planner_model else 0
    return calls + sum(1 for r in results.values() if r.model)


def base_answer(plan: Plan, results: dict[str, TaskResult]) -> dict[str, Any]:
    good = usable(results)
    return {
        **plan.child_fields(),
        "mode": plan.mode,
        "missing": unanswered(plan, results),
        "experts_used": sorted({r.category for r in good}),
        "sources": [Source(kind="expert", ref=f"{r.category}:{r.model}@{r.server}") for r in good],
        # for feedback (model x category scores) and the semantic cache (planner stores it under cache_key)
        "question": plan.question,
        "cache_key": plan.cache_key,
        "models_used": [ModelUse(model=r.model, category=r.category) for r in good if r.model and r.kind == "expert"],
    }


def partial_answer(plan: Plan | None, results: dict[str, TaskResult], rid_fields: dict[str, Any]) -> Answer:
    """At the deadline: answer with what has arrived and say what is missing."""
    if plan is None:
        return Answer(**rid_fields, mode="unknown", finish_reason="deadline",
                      error=ErrorInfo(code="deadline_exceeded", message="the request was not planned in time"))
    good = usable(results)
    fields = base_answer(plan, results)
    usage = total_usage(plan, results)
    if not good:
        return Answer(**fields, finish_reason="deadline", usage=usage, model_calls=model_calls(plan, results),
                      error=ErrorInfo(code="deadline_exceeded", message="no expert answered before the deadline"))
    return Answer(**fields, content=with_gaps_note(good[0].content, fields["missing"]), finish_reason="deadline",
                  usage=usage, model_calls=model_calls(plan, results))


def failed_answer(plan: Plan, results: dict[str, TaskResult]) -> Answer:
    reasons = "; ".join(sorted({r.error or "empty answer" for r in results.values()}))[:1000]
    return Answer(**base_answer(plan, results), finish_reason="error",
                  usage=total_usage(plan, results), model_calls=model_calls(plan, results),
                  error=ErrorInfo(code="inference_unavailable", message=f"no expert could answer: {reasons}"))
