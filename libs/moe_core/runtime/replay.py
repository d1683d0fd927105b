"""Model calls recorded and replayed, in one place for every stage (the inference client calls it).

- **Recording.** Every model call a stage run makes is kept with its output (`ModelOutput`: the stage, the task,
  digests of its system text and of the whole call, the output text and tool calls, model, server, tokens); the bus
  stamps them on the next message the run publishes (`Envelope.model_outputs`), so codex-lineage signs them into
  the record with the rest of the message.
- **Replaying as recorded.** A message that carries `as_recorded` (the original request's outputs, put there by
  `replay rerun --as-recorded` and passed on by `child_fields`) makes every model call of its run answered from
  them instead of a model: the output recorded for the same stage and task with the same call digest (the n-th
  use of one digest gets the n-th recorded output). A call the record cannot answer fails (InferenceError kind
  `replay`) naming the stage, the task and why: the system text (prompt template) differs from the recorded one,
  the rest of the prompt differs, or the record holds no call of that stage and task. It is recorded too, with its
  error, so the command can name the first stage that did not reproduce. A call that failed in the original run
  (every server tried: a timeout, a refusal) is kept with its error (`failure`) and fails the same way in the
  replay, so the stage does what it did then (a fallback plan, a failed task). A streamed call that failed after
  its first tokens is kept with what it had streamed (`content`) and its error: the replay streams that text, then
  fails the same way (the merger's thinking keeps what was streamed, as it did then).

The run's scope (`run_scope`) is opened by the stage consumer around each handler (moe_core.stage.consumer)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from moe_core.contracts.envelope import ModelOutput
from moe_core.runtime.inference_errors import InferenceError

TASK_MESSAGES = ("ExpertTask", "ToolTask", "ResearchTask", "GraphTask")


@dataclass
class RunScope:
    """One stage run: the message it handles, the model calls it made (and how many were stamped already)."""

    stage: str
    task_id: str | None = None
    recorded: list[ModelOutput] | None = None  # replaying as recorded: the original outputs
    outputs: list[ModelOutput] = field(default_factory=list)
    stamped: int = 0
    used: dict[str, int] = field(default_factory=dict)  # call digest -> recorded outputs of it used so far
    egress: frozenset[str] | None = None  # where the message's model calls may go (Envelope.egress); None: anywhere


RUN_SCOPE: ContextVar[RunScope | None] = ContextVar("moe_run_scope", default=None)


@contextmanager
def run_scope(stage: str, message: Any) -> Iterator[RunScope]:
    """The scope of the stage run that handles `message` (shared by reference with the tasks it starts)."""
    task_id = getattr(message, "task_id", None) if type(message).__name__ in TASK_MESSAGES else None
    scope = RunScope(stage, task_id, getattr(message, "as_recorded", None))
    egress = getattr(message, "egress", None)
    scope.egress = frozenset(egress) if egress is not None else None
    token = RUN_SCOPE.set(scope)
    try:
        yield scope
    finally:
        RUN_SCOPE.reset(token)


def _sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def digests(call: dict[str, Any]) -> tuple[str, str]:
    """(system, prompt): sha256 of the call's system text, and of the whole call as canonical JSON (messages, tools,
    output schema), so a changed template and a changed input are told apart."""
    messages = call.get("messages") or []
    system = "\n".join(str(m.get("content") or "") for m in messages if m.get("role") == "system")
    whole = {"messages": messages, "tools": call.get("tools"), "json_schema": call.get("json_schema")}
    return _sha(system), _sha(json.dumps(whole, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                                        default=str))


def allowed_egress() -> frozenset[str] | None:
    """Where the current stage run's model calls may go (`server/model`, the planner's egress decision); None: the
    run's message carries no decision (outside a request, or no data-class policy)."""
    scope = RUN_SCOPE.get()
    return scope.egress if scope is not None else None


def restrict_egress(allowed: list[str]) -> None:
    """The current stage run decided its request's egress itself (the planner): its own model calls from now on go
    only where the decision allows."""
    scope = RUN_SCOPE.get()
    if scope is not None:
        scope.egress = frozenset(allowed)


def answer(call: dict[str, Any]) -> ModelOutput | None:
    """The recorded output that answers this call when the run replays as recorded (None: not replaying; call the
    model). Raises InferenceError("replay", …) when the record cannot answer it. A call that failed then is
    answered too (its `failure` set, `content` what it had streamed): the caller fails it with `failed(output)`."""
    scope = RUN_SCOPE.get()
    if scope is None or scope.recorded is None:
        return None
    system, prompt = digests(call)
    where = scope.stage + (f" task {scope.task_id}" if scope.task_id else "")
    mine = [o for o in scope.recorded if o.stage == scope.stage and o.task_id == scope.task_id and o.error is None]
    same = [o for o in mine if o.prompt == prompt]
    n = scope.used.get(prompt, 0)
    if n < len(same):
        scope.used[prompt] = n + 1
        found = same[n].model_copy(update={"replayed": True})
        scope.outputs.append(found)
        return found
    if same:
        why = f"the record holds {len(same)} such call(s), this is call {n + 1}"
    elif not mine:
        why = "the record holds no model call of it"
    elif any(o.system == system for o in mine):
        why = "its prompt differs from the recorded one (same system text, other input)"
    else:
        why = (f"its system prompt differs from the recorded one (the prompt template changed: {system[:23]}, "
               f"recorded {', '.join(sorted({o.system[:23] for o in mine}))})")
    error = f"replay as recorded: {where}: {why}"
    scope.outputs.append(ModelOutput(stage=scope.stage, task_id=scope.task_id, system=system, prompt=prompt,
                                     error=error))
    raise InferenceError("replay", error)


def record(call: dict[str, Any], content: str, finish_reason: str, model: str, server: str,
           tool_calls: list[dict[str, Any]], prompt_tokens: int, completion_tokens: int) -> None:
    """Keep a model call the current stage run made (outside a stage run: nothing)."""
    scope = RUN_SCOPE.get()
    if scope is None:
        return
    system, prompt = digests(call)
    scope.outputs.append(ModelOutput(stage=scope.stage, task_id=scope.task_id, system=system, prompt=prompt,
                                     content=content, finish_reason=finish_reason, model=model, server=server,
                                     tool_calls=tool_calls, prompt_tokens=prompt_tokens,
                                     completion_tokens=completion_tokens))


def failed(output: ModelOutput) -> InferenceError | None:
    """The error a recorded call failed with (None: it did not fail), raised again by a replay as recorded."""
    f = output.failure
    if f is None:
        return None
    return InferenceError(str(f.get("kind")), str(f.get("detail")), server=str(f.get("server") or ""),
                          model=str(f.get("model") or ""), status=int(f.get("status") or 0))


def record_failure(call: dict[str, Any], error: InferenceError, streamed: str = "") -> None:
    """Keep a model call of the current stage run that failed, with its error and (a streamed call that failed
    after its first tokens) what it had streamed (outside a stage run, or a call a replay as recorded could not
    answer: nothing more)."""
    scope = RUN_SCOPE.get()
    if scope is None or error.kind == "replay":
        return
    system, prompt = digests(call)
    scope.outputs.append(ModelOutput(stage=scope.stage, task_id=scope.task_id, system=system, prompt=prompt,
                                     content=streamed, model=error.model, server=error.server, failure={
                                         "kind": error.kind, "detail": error.detail, "server": error.server,
                                         "model": error.model, "status": error.status}))


def take_outputs() -> list[ModelOutput] | None:
    """The run's model calls not yet stamped on a message it published (None: none), now counted as stamped."""
    scope = RUN_SCOPE.get()
    if scope is None or scope.stamped >= len(scope.outputs):
        return None
    fresh = scope.outputs[scope.stamped:]
    scope.stamped = len(scope.outputs)
    return fresh
