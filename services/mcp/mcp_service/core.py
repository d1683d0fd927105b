"""Pure logic of the Kafka front door: a ToolTask's outcome as a TaskResult for the merger."""

from __future__ import annotations

from mcp_service.registry import Outcome
from moe_core.contracts import Source, TaskResult, ToolTask
from moe_core.contracts.tools import PRECISION_CATEGORY, ToolErrorCode
from moe_core.policy.egress import may_use_tool

# Failures that are the exact answer to the input (1/0, 2023-02-30, a number too large to write down):
# they are stated like a result. The others (timeout, a disabled tool, a broken contract) mean the tool
# could not answer at all.
ANSWERING_ERRORS: frozenset[ToolErrorCode] = frozenset({"wrong_arguments", "tool_execution_error",
                                                       "result_too_large"})


def task_result(task: ToolTask, outcome: Outcome) -> TaskResult:
    """A success states the exact result in one sentence (confidence high, no model, zero tokens). A failure
    caused by the input is stated the same way ("No exact result: division by zero."), with the error code
    in `data.error`; any other failure carries `<code>: <message>` in `error`, so the merger treats the task
    as unanswered."""
    data = {"tool": outcome.tool, "version": outcome.version, "schema_sha256": outcome.schema_sha256,
            "args": task.args}
    base = {**task.child_fields(), "task_id": task.task_id, "kind": "tool", "category": PRECISION_CATEGORY,
            "duration_ms": outcome.duration_ms}
    sources = [Source(kind="tool", ref=f"{outcome.tool}@{outcome.version}")]
    if outcome.ok:
        return TaskResult(**base, content=outcome.text, confidence="high", data={**data, "result": outcome.result},
                          sources=sources)
    error = {"code": outcome.code, "message": outcome.message}
    if outcome.code in ANSWERING_ERRORS:
        return TaskResult(**base, content=f"No exact result: {outcome.message.rstrip('.')}.", confidence="high",
                          data={**data, "error": error}, sources=sources)
    return TaskResult(**base, confidence="low", error=f"{outcome.code}: {outcome.message}",
                      data={**data, "error": error})


def expired_result(task: ToolTask) -> TaskResult:
    return TaskResult(**task.child_fields(), task_id=task.task_id, kind="tool", category=PRECISION_CATEGORY,
                      confidence="low", error="timeout: the deadline passed before the tool ran",
                      data={"tool": task.tool, "error": {"code": "timeout", "message": "deadline passed"}})


def refused_tool(task: ToolTask) -> str | None:
    """The first tool of the task (a chain's steps too: each runs a tool) its request's egress decision does not
    permit (Envelope.egress, policy/opa/egress.rego); None: every one is permitted."""
    steps = task.args.get("steps") if task.tool == "chain" else None
    names = [task.tool, *(str(s.get("tool") or "") for s in steps if isinstance(s, dict))] \
        if isinstance(steps, list) else [task.tool]
    return next((name for name in names if not may_use_tool(task.egress, name)), None)


def forbidden_result(task: ToolTask, tool: str | None = None) -> TaskResult:
    """A tool its request's egress decision did not permit (`tool`: the chain's step, else the task's): not run."""
    message = (f"the request's data class ({task.data_class or 'unstated'}) may not use the tool "
               f"{tool or task.tool}: it was not run")
    return TaskResult(**task.child_fields(), task_id=task.task_id, kind="tool", category=PRECISION_CATEGORY,
                      confidence="low", error=f"data_class_forbidden: {message}",
                      data={"tool": task.tool, "args": task.args,
                            "error": {"code": "data_class_forbidden", "message": message}})


def refused(result: TaskResult) -> bool:
    return ((result.data or {}).get("error") or {}).get("code") == "data_class_forbidden"
