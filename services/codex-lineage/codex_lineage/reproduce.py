"""`replay rerun --as-recorded RESPONSE_ID`, second half: re-execute the request with the recorded model outputs.

The signed record holds, on the messages each stage run published, the model calls the run made with their outputs
(`Envelope.model_outputs`, moe_core.runtime.replay). Once the record verifies, the recorded ChatRequest goes
through today's fleet under a new response_id (`replay_of`: no cache, nothing learned) carrying those outputs
(`as_recorded`): the real stage code runs, and every model call is answered from the record of the original run
(same stage, task and call digest) instead of a model. Tool, research and graph tasks are answered from their
recorded results (`as_recorded_results`, moe_core.stage.replay: same task, same instruction digest) instead of
today's tools and data, and the planner takes the recorded plan's few-shot examples instead of the semantic cache
and its learned patterns (`Plan.learned_patterns`) instead of the tenant's patterns of today.
The plan, each task's result and the answer are compared with the recorded ones; the answer must be byte for byte
the recorded one. A call or a tool task the record cannot answer (a changed prompt template, an input or an
instruction that differs, no such call or task) fails in its stage and is named."""

from __future__ import annotations

import json
from typing import Any

from codex_lineage.digests import TASKS, digest
from codex_lineage.rerun import replay_request, send
from codex_lineage.settings import LineageSettings
from moe_core.audit.records import AuditRecord
from moe_core.contracts import FewShot, ModelOutput, RecordedResult
from moe_core.stage.replay import REPLAY_ERROR, recorded_results

# what the fleet learns after the answer (graph-ingest's extraction, gap-healer) publishes these: no part of it
LEARNING = frozenset({"AuditEvent", "OntologyGap", "LintRequest"})


def recorded_outputs(records: list[AuditRecord]) -> list[ModelOutput]:
    """Every model output the request's records carry, in record order, but those of the learning after the answer
    (LEARNING: a replay learns nothing); a message republished unchanged (a redelivery) counts once."""
    seen: set[str] = set()
    outputs: list[ModelOutput] = []
    for record in records:
        if record.message_type in LEARNING:
            continue
        body = json.dumps(record.payload, sort_keys=True)
        if body in seen:
            continue
        seen.add(body)
        outputs += [ModelOutput.model_validate(o) for o in record.payload.get("model_outputs") or []]
    return [o for o in outputs if not o.replayed and o.error is None]


def tool_results(records: list[AuditRecord]) -> list[RecordedResult]:
    """The recorded results of the request's tool, research and graph tasks, each with the digest of its task's
    instruction (moe_core.stage.replay), which answer the re-execution's same tasks."""
    tasks = [{**r.payload, "message_type": r.message_type} for r in records if r.message_type in TASKS]
    return recorded_results(tasks, [r.payload for r in records if r.message_type == "TaskResult"])


def not_replayable(records: list[AuditRecord]) -> str | None:
    """Why the request cannot be re-executed from its record, or None."""
    answer = next((r.payload for r in records if r.message_type == "Answer"), None)
    if answer is None:
        return "the record holds no answer"
    if answer.get("cache_hit"):
        return "it was answered from the semantic cache (no stage ran: the cached answer is the recorded one)"
    plan = next((r.payload for r in records if r.message_type == "Plan"), None)
    if plan is not None and plan.get("source") == "plan_cache":
        return "its plan came from the plan cache, which a replay does not read"
    return None


def _task_view(result: dict[str, Any]) -> dict[str, Any]:
    return {k: result.get(k) for k in ("kind", "category", "content", "data", "error", "confidence", "tool_calls")}


def _errors(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The model calls of the re-execution that the record could not answer (each names its stage and task)."""
    return [o for m in messages for o in m.get("model_outputs") or [] if o.get("error")]


def compare(records: list[AuditRecord], plan: dict[str, Any] | None, results: list[dict[str, Any]],
            answer: dict[str, Any]) -> tuple[bool, list[str]]:
    """Stage by stage, the re-execution against the record: (whether the answer is byte for byte the recorded one,
    the lines to print, ending with REPRODUCED or NOT REPRODUCED and the first stage that differs and why)."""
    old_plan = next((r.payload for r in records if r.message_type == "Plan"), None)
    old_answer = next((r.payload for r in records if r.message_type == "Answer"), {})
    old_results = {str(r.payload.get("task_id")): r.payload for r in records if r.message_type == "TaskResult"}
    new_results = {str(r.get("task_id")): r for r in results}
    failed = _errors([*([plan] if plan else []), *results, answer])
    lines: list[str] = []
    first: str | None = None

    def stage(name: str, same: bool, detail: str, errors: list[dict[str, Any]]) -> None:
        nonlocal first
        why = f" ({errors[0]['error']})" if errors and not same else ""
        lines.append(f"  {name:<8} {'same' if same else 'DIFFERS'}" + (f": {detail}" if detail else "") + why)
        if not same and first is None:
            first = name + why

    tasks = (plan or {}).get("tasks") or []
    stage("plan", (old_plan or {}).get("tasks") == tasks, f"{len(tasks)} tasks", _errors([plan] if plan else []))
    for task_id in sorted(set(old_results) | set(new_results)):
        a, b = old_results.get(task_id), new_results.get(task_id)
        mine = [e for e in failed if e.get("task_id") == task_id]
        if a is None or b is None:
            stage(f"task {task_id}", False, "not recorded" if a is None else "not run", mine)
            continue
        if str(b.get("error") or "").startswith(REPLAY_ERROR):  # a tool task the record could not answer
            mine = [*mine, {"error": b["error"]}]
        origin = ", answered from the record" if b.get("from_record") else ""
        stage(f"task {task_id}", _task_view(a) == _task_view(b), f"{b.get('kind')}:{b.get('category')}{origin}",
              mine)
    before, after = str(old_answer.get("content", "")), str(answer.get("content", ""))
    reproduced = before == after
    stage("answer", reproduced, f"{len(after)} chars, {digest(after)}" + (
        "" if reproduced else f", recorded {len(before)} chars, {digest(before)}"),
          [e for e in failed if e.get("task_id") is None])
    if reproduced:
        lines.append("REPRODUCED: the answer is byte for byte the recorded one")
    else:
        lines.append(f"NOT REPRODUCED: first differing stage: {first}")
    return reproduced, lines


def answered(messages: list[dict[str, Any]]) -> int:
    """How many model calls of the re-execution the record answered."""
    return sum(1 for m in messages for o in m.get("model_outputs") or [] if o.get("replayed"))


async def reproduce(settings: LineageSettings, records: list[AuditRecord], timeout_s: float) -> dict[str, Any]:
    """Re-execute the recorded request with its recorded model outputs on the fleet; the outcome as data: the
    replay's id, whether it reproduced, the lines to print, how many calls the record answered."""
    response_id = records[0].response_id
    reason = not_replayable(records)
    if reason is not None:
        return {"replay_id": None, "reproduced": False, "answered_from_record": 0,
                "lines": [f"NOT REPRODUCED: not re-executable: {reason}"]}
    outputs = recorded_outputs(records)
    tools = tool_results(records)
    request = next(r.payload for r in records if r.message_type == "ChatRequest")
    recorded_plan = next((r.payload for r in records if r.message_type == "Plan"), {})
    replay = replay_request(request, response_id, timeout_s, as_recorded=outputs, as_recorded_results=tools,
                            recorded_few_shot=[FewShot.model_validate(f) for f in recorded_plan.get("few_shot") or []],
                            recorded_patterns=recorded_plan.get("learned_patterns"))
    try:
        plan, results, answer = await send(settings, replay, timeout_s)
    except TimeoutError:
        return {"replay_id": replay.response_id, "reproduced": False, "answered_from_record": 0,
                "lines": [f"NOT REPRODUCED: no answer of {replay.response_id} within {timeout_s:.0f} s"]}
    reproduced, lines = compare(records, plan, results, answer)
    calls = answered([*([plan] if plan else []), *results, answer])
    replayed = sum(1 for r in results if r.get("from_record"))
    head = (f"re-executed as {replay.response_id}: {calls} of {len(outputs)} recorded model calls and {replayed} of "
            f"{len(tools)} recorded tool results answered from the record, no model called, no tool run")
    return {"replay_id": replay.response_id, "reproduced": reproduced, "answered_from_record": calls,
            "tool_results_from_record": replayed, "lines": [head, *lines]}
