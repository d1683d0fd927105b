"""Pure logic of the Kafka front door: a ToolTask's outcome as a TaskResult for the merger."""

from __future__ import annotations

from mcp_service.registry import Outcome
from moe_core.contracts import Source, TaskResult, ToolTask
from moe_core.contracts.tools import PRECISION_CATEGORY


def task_result(task: ToolTask, outcome: Outcome) -> TaskResult:
    """A success states the exact result in one sentence (confidence high, no model, zero tokens); a failure
    carries `<code>: <message>` in `error` so the merger treats the task as unanswered."""
    data = {"tool": outcome.tool, "version": outcome.version, "schema_sha256": outcome.schema_sha256,
            "args": task.args}
    base = {**task.child_fields(), "task_id": task.task_id, "kind": "tool", "category": PRECISION_CATEGORY,
            "duration_ms": outcome.duration_ms}
    if not outcome.ok:
        return TaskResult(**base, confidence="low", error=f"{outcome.code}: {outcome.message}",
                          data={**data, "error": {"code": outcome.code, "message": outcome.message}})
    return TaskResult(**base, content=outcome.text, confidence="high", data={**data, "result": outcome.result},
                      sources=[Source(kind="tool", ref=f"{outcome.tool}@{outcome.version}")])


def expired_result(task: ToolTask) -> TaskResult:
    return TaskResult(**task.child_fields(), task_id=task.task_id, kind="tool", category=PRECISION_CATEGORY,
                      confidence="low", error="timeout: the deadline passed before the tool ran",
                      data={"tool": task.tool, "error": {"code": "timeout", "message": "deadline passed"}})
