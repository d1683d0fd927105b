"""Tool results replayed as recorded, in one place for every tool stage (Outcomes.once, moe_core.stage.resources).

A replay as recorded (`replay rerun --as-recorded`) carries the original request's tool task results
(`Envelope.as_recorded_results`, passed on by `child_fields`). A tool, research or graph task of such a replay is
not run against today's tools and data: its result is the recorded one (same task id, kind and category), marked
`from_record`, provided the task's instruction is the recorded one (its digest). Otherwise the task fails with an
error naming the stage, the task and why (its instruction differs; the record holds no result of it), so the
command names it as the first stage that did not reproduce. Expert tasks are re-executed: their model calls are
answered from the record (moe_core.runtime.replay)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from moe_core.contracts import Envelope, GraphTask, RecordedResult, ResearchTask, TaskResult, ToolTask

TOOL_TASKS: dict[type[Envelope], str] = {ToolTask: "tool", ResearchTask: "research", GraphTask: "graph"}
REPLAY_ERROR = "replay as recorded"


def instruction(message: Envelope) -> dict[str, Any] | None:
    """What a tool task message asks its tool (None: not a tool task): the tool and its arguments, the research
    question and queries, the graph question and its filters."""
    if isinstance(message, ToolTask):
        return {"tool": message.tool, "args": message.args, "question": message.question}
    if isinstance(message, ResearchTask):
        return {"question": message.question, "queries": message.queries, "max_results": message.max_results}
    if isinstance(message, GraphTask):
        return {"question": message.question, "metadata_filters": message.metadata_filters}
    return None


def instruction_digest(message: Envelope) -> str | None:
    """sha256:<hex> of the task message's instruction as canonical JSON (None: not a tool task)."""
    asked = instruction(message)
    if asked is None:
        return None
    text = json.dumps(asked, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def recorded_result(stage: str, message: Envelope | None) -> TaskResult | None:
    """The result a replay as recorded answers this tool task with (None: not such a replay, or not a tool task:
    run it). A task the record cannot answer gets a result with the error why."""
    if message is None or message.as_recorded_results is None or type(message) not in TOOL_TASKS:
        return None
    task_id, kind = str(getattr(message, "task_id", "")), TOOL_TASKS[type(message)]
    digest = instruction_digest(message)
    mine = [r for r in message.as_recorded_results if r.task_id == task_id and r.kind == kind]
    base = {**message.child_fields(), "task_id": task_id, "kind": kind}
    same = [r for r in mine if r.instruction == digest]
    if same:
        return _result(base, same[0])
    why = (f"its instruction differs from the recorded one ({str(digest)[:23]}, recorded "
           f"{', '.join(sorted({r.instruction[:23] for r in mine}))})" if mine
           else "the record holds no result of it")
    category = mine[0].category if mine else str(getattr(message, "category", kind))
    return TaskResult(**base, category=category, confidence="low",
                      error=f"{REPLAY_ERROR}: {stage} task {task_id}: {why}")


def _result(base: dict[str, Any], recorded: RecordedResult) -> TaskResult:
    fields = {k: v for k, v in recorded.result.items() if k in TaskResult.model_fields and k not in base
              and k not in Envelope.model_fields and k not in ("category", "from_record")}
    return TaskResult.model_validate({**base, **fields, "category": recorded.category, "from_record": True})


def recorded_results(tasks: list[dict[str, Any]], results: list[dict[str, Any]]) -> list[RecordedResult]:
    """The tool task results of a request's record, each with the digest of its recorded task message's
    instruction: `tasks` the recorded task messages (ToolTask, ResearchTask, GraphTask payloads with their
    `message_type`), `results` the recorded TaskResult payloads (the first of each task counts)."""
    models = {model.__name__: model for model in TOOL_TASKS}
    digests: dict[str, str] = {}
    for payload in tasks:
        model = models.get(str(payload.get("message_type")))
        if model is not None and str(payload.get("task_id")) not in digests:
            message = model.model_validate({k: v for k, v in payload.items() if k != "message_type"})
            digests[str(payload.get("task_id"))] = str(instruction_digest(message))
    out: dict[str, RecordedResult] = {}
    own = set(TaskResult.model_fields) - set(Envelope.model_fields) - {"task_id", "kind", "category",
                                                                        "from_record"}
    for r in results:
        task_id = str(r.get("task_id"))
        if r.get("kind") not in TOOL_TASKS.values() or task_id in out or task_id not in digests:
            continue
        out[task_id] = RecordedResult(task_id=task_id, kind=str(r.get("kind")), category=str(r.get("category")),
                                      instruction=digests[task_id], result={k: r[k] for k in own if k in r})
    return list(out.values())
