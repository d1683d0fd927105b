"""What `try_finish` needs to know about a request, read in one Redis round trip: the stored answer,
draft and ingest event (a redelivery republishes them), the plan with its research fallback task, and the
results, (given the key of the request's Cancel mark, moe_core.runtime.cancellation) whether it was cancelled, and
(given the key of the fleet configuration's overlay, moe_core.llm.inference.live) the overlay, laid over the models'
configuration only when the request is composed. Queued on a pipeline of its own or behind the write of the message
that arrived (MergerState)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from redis.asyncio.client import Pipeline

from moe_core.contracts import Answer, Draft, IngestEvent, Plan, PlannedTask, TaskResult

PARTS = ("answer", "draft", "ingest", "plan", "fallback")


@dataclass
class Snapshot:
    answer: Answer | None = None
    draft: Draft | None = None
    ingest: IngestEvent | None = None
    plan: Plan | None = None
    raw_results: dict[str, str] = field(default_factory=dict)  # task id -> the stored result, parsed on first use
    cancelled: bool | None = None  # the request's Cancel mark as read with the rest (None: not read)
    fresh: bool | None = None  # the message's own write stored something new (False: seen before; None: no write)
    overlay: Any = None  # the fleet configuration's overlay as read with the rest (raw; read only given its key)
    _results: dict[str, TaskResult] | None = field(default=None, repr=False)

    @property
    def results(self) -> dict[str, TaskResult]:
        """The results, parsed when first asked for: a message that does not complete its request (the plan and
        every result but the last) checks which tasks are in (`raw_results`) without parsing any."""
        if self._results is None:
            self._results = {task_id: TaskResult.model_validate_json(value)
                             for task_id, value in self.raw_results.items()}
        return self._results


def queue(pipe: Pipeline, key: Any, rid: str, cancel_key: str | None = None, overlay_key: str | None = None) -> None:
    """Append the reads to `pipe` (key(rid, part) names a part's key; cancel_key: the request's Cancel mark;
    overlay_key: the fleet configuration's overlay); parse() takes their replies."""
    pipe.mget([key(rid, part) for part in PARTS])
    pipe.hgetall(key(rid, "results"))
    if cancel_key is not None:
        pipe.exists(cancel_key)
    if overlay_key is not None:
        pipe.get(overlay_key)


def parse(replies: list[Any], cancel: bool = False, overlay: bool = False) -> Snapshot:
    """The last replies of a pipeline that queue()d the reads (cancel: with the Cancel mark; overlay: with the
    fleet configuration's overlay). Only what try_finish will look at is parsed: a stored answer or draft ends it."""
    snap = _parse(replies[:-1] if overlay else replies, cancel)
    if overlay:
        snap.overlay = replies[-1]
    return snap


def _parse(replies: list[Any], cancel: bool) -> Snapshot:
    marked = bool(replies[-1]) if cancel else None
    if cancel:
        replies = replies[:-1]
    (answer, draft, ingest, plan, extra), results = replies[-2], replies[-1]
    if answer:
        return Snapshot(answer=Answer.model_validate_json(answer),
                        ingest=IngestEvent.model_validate_json(ingest) if ingest else None, cancelled=marked)
    if draft:
        return Snapshot(draft=Draft.model_validate_json(draft), cancelled=marked)
    if not plan:
        return Snapshot(cancelled=marked)
    parsed = Plan.model_validate_json(plan)
    if extra:
        parsed.tasks = [*parsed.tasks, PlannedTask.model_validate_json(extra)]
    return Snapshot(plan=parsed, raw_results={str(task_id): value for task_id, value in results.items()},
                    cancelled=marked)
