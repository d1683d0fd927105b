"""What `try_finish` needs to know about a request, read in one Redis round trip: the stored answer,
draft and ingest event (a redelivery republishes them), the plan with its research fallback task, and the
results, (given the key of the request's Cancel mark, moe_core.runtime.cancellation) whether it was cancelled, and
(given the key of the fleet configuration's overlay, moe_core.llm.inference.live) the overlay, laid over the models'
configuration only when the request is composed. Read by one script (`SCRIPT`), after the write of the message that
arrived when there is one (MergerState): one command instead of a MULTI/EXEC transaction of up to eight, which cost
the client about 0.2 ms of CPU more per message (redis-py packs and parses each queued command), as atomic."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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


# KEYS: the written key (or any), the deadline watch, PARTS' keys, the results, then the Cancel mark and the overlay
# when ARGV[6] / ARGV[7] say so. ARGV: what to write ("plan": SET NX the plan; "result": HSETNX the result by task id;
# "none"), the result's task id, the value, the TTL in seconds, the deadline. Returns [stored anew (0/1), PARTS'
# values, the results as field/value pairs, (the mark), (the overlay)].
SCRIPT = """
local stored = 0
if ARGV[1] == 'plan' then
  stored = redis.call('SET', KEYS[1], ARGV[3], 'NX', 'EX', ARGV[4]) and 1 or 0
elseif ARGV[1] == 'result' then
  stored = redis.call('HSETNX', KEYS[1], ARGV[2], ARGV[3])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
end
if ARGV[1] ~= 'none' then
  redis.call('ZADD', KEYS[2], 'NX', ARGV[5], ARGV[8])
end
local out = {stored, redis.call('MGET', KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]), redis.call('HGETALL', KEYS[8])}
local i = 9
if ARGV[6] == '1' then out[#out + 1] = redis.call('EXISTS', KEYS[i]); i = i + 1 end
if ARGV[7] == '1' then out[#out + 1] = redis.call('GET', KEYS[i]) end
return out
"""


def parse(replies: list[Any], cancel: bool = False, overlay: bool = False) -> Snapshot:
    """The script's replies after its first (cancel: with the Cancel mark; overlay: with the fleet configuration's
    overlay). Only what try_finish will look at is parsed: a stored answer or draft ends it."""
    snap = _parse(replies[:-1] if overlay else replies, cancel)
    if overlay:
        snap.overlay = replies[-1]
    return snap


def _parse(replies: list[Any], cancel: bool) -> Snapshot:
    marked = bool(replies[-1]) if cancel else None
    if cancel:
        replies = replies[:-1]
    (answer, draft, ingest, plan, extra), pairs = replies[-2], replies[-1]
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
    return Snapshot(plan=parsed, raw_results=dict(zip(pairs[::2], pairs[1::2], strict=True)), cancelled=marked)
