"""The merger's partial state, kept in Redis so any replica can finish any request."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from merger import reads
from merger.reads import Snapshot
from moe_core.contracts import Answer, Draft, Envelope, IngestEvent, Plan, PlannedTask, TaskResult, utcnow
from moe_core.runtime import redis_batch
from moe_core.runtime.replay import take_outputs

E = TypeVar("E", bound=Envelope)

_RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"


class MergerState:
    def __init__(self, redis: Redis, namespace: str, ttl_s: int,
                 cancel_key: Callable[[str], str] | None = None, overlay_key: str | None = None) -> None:
        """cancel_key: the Redis key of a request's Cancel mark (moe_core.runtime.cancellation); overlay_key: the
        fleet configuration's overlay (moe_core.llm.inference.live): both read with every snapshot, so composing
        needs no round trip of its own to check either."""
        self.redis = redis
        self.prefix = f"merger:{namespace}"
        self.deadlines = f"{self.prefix}:deadlines"
        self.ttl_s = ttl_s
        self.cancel_key = cancel_key
        self.overlay_key = overlay_key

    async def _store(self, rid: str, write: str = "none", key: str = "", value: str = "", task_id: str = "",
                     deadline: float = 0.0) -> list[object]:
        """One script (reads.SCRIPT): the write (`write`: plan, result or none) and the request's state read back."""
        keys = [key or self._k(rid, "plan"), self.deadlines, *[self._k(rid, part) for part in reads.PARTS],
                self._k(rid, "results")]
        if self.cancel_key is not None:
            keys.append(self.cancel_key(rid))
        if self.overlay_key is not None:
            keys.append(self.overlay_key)
        # EVAL, not EVALSHA: no NOSCRIPT round trips after a Redis restart; Redis caches the compiled script
        replies = await self.redis.eval(reads.SCRIPT, len(keys), *keys, write, task_id, value, str(self.ttl_s),
                                        str(deadline), "1" if self.cancel_key is not None else "0",
                                        "1" if self.overlay_key is not None else "0", rid)
        return list(replies)

    def _parse(self, replies: list[object]) -> Snapshot:
        return reads.parse(replies[1:], cancel=self.cancel_key is not None, overlay=self.overlay_key is not None)

    def _k(self, rid: str, part: str) -> str:
        return f"{self.prefix}:{rid}:{part}"

    async def save_plan(self, plan: Plan) -> Snapshot:
        """Store the plan (unless stored), watch its deadline and read the request's state back, in one round trip."""
        rid = plan.response_id
        return self._fresh(await self._store(rid, "plan", self._k(rid, "plan"), plan.model_dump_json(),
                                             deadline=plan.deadline_at.timestamp()))

    async def save_result(self, result: TaskResult) -> Snapshot:
        """Store the result (unless stored), watch the deadline and read the request's state back, in one round trip."""
        rid = result.response_id
        return self._fresh(await self._store(rid, "result", self._k(rid, "results"), result.model_dump_json(),
                                             result.task_id, result.deadline_at.timestamp()))

    def _fresh(self, replies: list[object]) -> Snapshot:
        """The state read back, and whether the message's own write (the script's first step) stored it anew."""
        snap = self._parse(replies)
        snap.fresh = bool(replies[0])
        return snap

    async def snapshot(self, rid: str) -> Snapshot:
        """Answer, draft, ingest event, plan and results in one round trip (merger.reads)."""
        return self._parse(await self._store(rid))

    async def forget_deadline(self, rid: str) -> None:
        await self.redis.zrem(self.deadlines, rid)

    async def plan(self, rid: str) -> Plan | None:
        """The plan, with the research fallback task the merger added (if any)."""
        raw, extra = await self.redis.mget(self._k(rid, "plan"), self._k(rid, "fallback"))
        if not raw:
            return None
        plan = Plan.model_validate_json(raw)
        if extra:
            plan.tasks = [*plan.tasks, PlannedTask.model_validate_json(extra)]
        return plan

    async def add_fallback(self, rid: str, task: PlannedTask) -> bool:
        """Add a task to the plan once: True for the one caller that added it."""
        return bool(await self.redis.set(self._k(rid, "fallback"), task.model_dump_json(), nx=True, ex=self.ttl_s))

    async def results(self, rid: str) -> dict[str, TaskResult]:
        raw = await self.redis.hgetall(self._k(rid, "results"))
        return {str(task_id): TaskResult.model_validate_json(value) for task_id, value in raw.items()}

    async def answer(self, rid: str) -> Answer | None:
        raw = await self.redis.get(self._k(rid, "answer"))
        return Answer.model_validate_json(raw) if raw else None

    async def claim(self, rid: str, seconds: float, owner: str = "1") -> bool:
        """Only one replica composes an answer at a time; the claim expires if that replica dies."""
        return bool(await self.redis.set(self._k(rid, "claim"), owner, nx=True, px=max(int(seconds * 1000), 100)))

    async def renew(self, rid: str, token: str, seconds: float) -> bool:
        """Extend a lease this replica holds (`token`); False if it lapsed or is another's."""
        return bool(await self.redis.eval(_RENEW, 1, self._k(rid, "claim"), token, str(max(int(seconds * 1000), 100))))

    async def put_answer(self, answer: Answer, ingest: IngestEvent | None = None) -> Answer:
        """First answer wins; returns the answer that stands. The request leaves the deadline watch. `ingest`: the
        answer's ingest event, stored (unless stored) in the same round trip."""
        answer = _with_outputs(answer)
        won, raw = await self._put_first(self._k(answer.response_id, "answer"), answer, ingest)
        return answer if won or not raw else Answer.model_validate_json(raw)

    async def put_draft(self, draft: Draft, ingest: IngestEvent | None = None) -> Draft:
        """The answer went to the critic or the guardrail: first draft wins; the request leaves the deadline watch."""
        draft = _with_outputs(draft)
        won, raw = await self._put_first(self._k(draft.response_id, "draft"), draft, ingest)
        return draft if won or not raw else Draft.model_validate_json(raw)

    async def _put_first(self, key: str, message: Envelope, ingest: IngestEvent | None) -> tuple[bool, str | None]:
        """One round trip: the writes the handler deferred (moe_core.runtime.redis_batch: its model calls' budget
        give-backs), the ingest event unless stored, the message unless stored, leave the deadline watch, read
        what stands."""
        pipe = self.redis.pipeline(transaction=True)
        redis_batch.flush_into(pipe)
        if ingest is not None:
            self._queue_ingest(pipe, ingest)
        pipe.set(key, message.model_dump_json(), nx=True, ex=self.ttl_s)
        pipe.zrem(self.deadlines, message.response_id)
        pipe.get(key)
        *_, won, _, raw = await pipe.execute()
        return bool(won), raw

    async def draft(self, rid: str) -> Draft | None:
        raw = await self.redis.get(self._k(rid, "draft"))
        return Draft.model_validate_json(raw) if raw else None

    def _queue_ingest(self, pipe: Pipeline, event: IngestEvent) -> None:
        pipe.set(self._k(event.response_id, "ingest"), event.model_dump_json(), nx=True, ex=self.ttl_s)

    async def ingest(self, rid: str) -> IngestEvent | None:
        raw = await self.redis.get(self._k(rid, "ingest"))
        return IngestEvent.model_validate_json(raw) if raw else None

    async def due(self, limit: int = 50) -> list[str]:
        now = utcnow().timestamp()
        return [str(r) for r in await self.redis.zrangebyscore(self.deadlines, "-inf", now, start=0, num=limit)]


def _with_outputs(message: E) -> E:
    """The run's model calls (moe_core.runtime.replay) stored with the message, so a redelivery republishes them
    as the first delivery published them, not a copy without them."""
    if message.model_outputs is None and (outputs := take_outputs()) is not None:
        return message.model_copy(update={"model_outputs": outputs})
    return message
