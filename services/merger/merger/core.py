"""Pure merging logic, each notion once: which results are usable, what the answer lacks, its sources,
usage and common fields; partial and failed answers. (The fast path, priorities and prompts are in
synthesis.py, built on these.)"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from moe_core.contracts import Answer, ErrorInfo, ModelUse, Plan, Source, TaskResult, Usage
from moe_core.llm import tool_choice
from moe_core.runtime.inference_errors import KINDS

CONTEXT_LENGTH = "context_length:"  # a failed task's error when every model refused the request as too long

RANK = {"high": 0, "medium": 1, "low": 2}
ANSWERING = ("expert", "tool")  # result kinds that answer; graph and research results are context
FALLBACK_PREFIX = "rf"  # task ids of the merger's own research fallback tasks


def missing_tasks(plan: Plan, results: Container[str]) -> list[str]:
    """Task ids still without a result (the merger waits for them)."""
    return [t.task_id for t in plan.tasks if t.task_id not in results]


def missing(plan: Plan, results: dict[str, TaskResult]) -> list[str]:
    """Categories the answer lacks: tasks without a result, and failed or empty expert/tool results.
    An empty graph or research result means "nothing found", not "missing"; the merger's own research
    fallback is never missing."""
    out: list[str] = []
    for task in plan.tasks:
        if task.task_id.startswith(FALLBACK_PREFIX) and task.kind == "research":
            continue
        result = results.get(task.task_id)
        if result is None:
            out.append(task.category)
        elif not (result.content.strip() and not result.error):
            if result.error or result.kind in ("expert", "tool"):
                out.append(task.category)
    return out


def with_gaps_note(content: str, gaps: list[str], *, deadline: bool = False) -> str:
    """The answer and, when tasks did not answer, which: at the deadline they did not answer in time; when
    composing, every task had come back and those failed or came back empty."""
    why = "no answer in time from" if deadline else "no usable answer from"
    return f"{content}\n\n(Incomplete: {why}: {', '.join(gaps)}.)" if gaps else content


def usable(results: dict[str, TaskResult]) -> list[TaskResult]:
    """Results with content and no error, the most confident first."""
    good = [r for r in results.values() if not r.error and r.content.strip()]
    return sorted(good, key=lambda r: (RANK[r.confidence], r.task_id))


def result_sources(results: list[TaskResult]) -> list[Source]:
    """The sources of the results an answer used (graph facts are added only when the judge tagged them;
    tenant documents always: they are the judge's context)."""
    out: list[Source] = []
    for r in results:
        if r.kind == "expert":
            out.append(Source(kind="expert", ref=f"{r.category}:{r.model}@{r.server}"))
        elif r.kind == "research":
            out.extend(r.sources)
        elif r.kind == "tool":
            out.extend(r.sources or [Source(kind="tool", ref=r.category)])
        elif r.kind == "graph":  # the tenant documents the judge was shown, each with its source
            out.extend(s for s in r.sources if s.kind == "document")
    return out


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
        "missing": missing(plan, results),
        "experts_used": sorted({r.category for r in good}),
        "sources": result_sources(good),
        # for feedback (model x category scores) and the semantic cache (planner stores it under cache_key)
        "question": plan.question,
        "cache_key": plan.cache_key,
        "models_used": [ModelUse(model=r.model, category=r.category) for r in good if r.model and r.kind == "expert"],
        # the overhead ledger: the plan's run and each task's before this one (moe_core.runtime.observability.ledger)
        "ledger": [c for c in (plan.cost, *(results[t].cost for t in sorted(results))) if c is not None],
    }


def partial_answer(plan: Plan | None, results: dict[str, TaskResult], rid_fields: dict[str, Any]) -> Answer:
    """At the deadline: answer with what has arrived and say what is missing."""
    if plan is None:
        return Answer(**rid_fields, mode="unknown", finish_reason="deadline",
                      error=ErrorInfo(code="deadline_exceeded", message="the request was not planned in time"))
    # Only what answers the question may stand in for the answer: knowledge-graph facts and web snippets
    # are context for a judge, never a reply of their own; for a structured request nothing does (its results
    # are prose: only its judge writes the JSON).
    good = [] if plan.params.response_format is not None else [r for r in usable(results) if r.kind in ANSWERING]
    fields = base_answer(plan, results)
    usage = total_usage(plan, results)
    if not good:
        gaps = ", ".join(fields["missing"]) or "the experts"
        return Answer(**fields, finish_reason="deadline", usage=usage, model_calls=model_calls(plan, results),
                      error=ErrorInfo(code="deadline_exceeded",
                                      message=f"The request did not finish in time: no answer from {gaps}."))
    return Answer(**fields, content=with_gaps_note(good[0].content, fields["missing"], deadline=True),
                  finish_reason="deadline",
                  usage=usage, model_calls=model_calls(plan, results))


def failed_answer(plan: Plan, results: dict[str, TaskResult]) -> Answer:
    """Every answering task failed. The client is told what kind of failure it was; which servers and models
    failed, and why, is the Answer's `error.detail` (the record's, never the client's)."""
    reasons = "; ".join(sorted({r.error or "empty answer" for r in results.values()}))[:1000]
    errors = [r.error for r in results.values() if r.error]  # a context task without facts failed nothing
    unmet = sorted({e for e in errors if e.startswith(tool_choice.UNMET)})
    if unmet:  # the models answered, but not with the tool call demanded (the wording names no model)
        code, message = "tool_choice_unmet", "; ".join(unmet)
    elif errors and all(e.startswith(CONTEXT_LENGTH) for e in errors):  # no retry mends it: the client's 400
        code, message = "context_length_exceeded", ("the request is longer than the models' context: shorten the "
                                                     "messages (or the conversation) and send it again")
    else:
        kinds = ", ".join(sorted(failure_kinds(errors))) or "empty answers"
        code, message = "inference_unavailable", (f"no expert could answer ({kinds}); the fleet's operators find "
                                                  f"each model's reason under the response id {plan.response_id}")
    return Answer(**base_answer(plan, results), finish_reason="error",
                  usage=total_usage(plan, results), model_calls=model_calls(plan, results),
                  error=ErrorInfo(code=code, message=message, detail=reasons))


def failure_kinds(errors: list[str]) -> set[str]:
    """The kinds of the inference failures in tasks' errors (moe_core.runtime.inference_errors.KINDS: each error starts
    `<kind>: `); any other reason counts as `failed`."""
    found = set()
    for error in errors:
        for reason in error.split("; "):
            kind = reason.split(":", 1)[0].strip()
            found.add(kind if kind in KINDS else "failed")
    return found
