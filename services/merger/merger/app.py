"""merger: plans + results -> one answer per request (judge synthesis or the single-expert fast path)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI
from redis.asyncio import Redis

from merger import core
from merger.settings import MergerSettings
from merger.state import MergerState
from moe_core.bus import TRANSIENT_ERRORS, Bus
from moe_core.contracts import Answer, Plan, Progress, TaskResult
from moe_core.contracts.messages import FinishReason
from moe_core.inference import InferenceClient, InferenceConfig, InferenceError
from moe_core.observability import bind_response_id
from moe_core.observability.metrics import MERGER_FINALIZED
from moe_core.service import create_service_app
from moe_core.stores import redis_client, redis_ready

log = logging.getLogger(__name__)


class Merger:
    def __init__(self, settings: MergerSettings, bus: Bus, inference: InferenceClient, redis: Redis) -> None:
        self.settings = settings
        self.bus = bus
        self.inference = inference
        self.state = MergerState(redis, settings.topic_namespace, settings.state_ttl_s)

    async def on_plan(self, plan: Plan) -> None:
        await self.state.save_plan(plan)
        await self.try_finish(plan.response_id)

    async def on_result(self, result: TaskResult) -> None:
        await self.state.save_result(result)
        await self.try_finish(result.response_id)

    async def try_finish(self, rid: str) -> None:
        done = await self.state.answer(rid)
        if done is not None:  # redelivery after the answer was stored: publish it (again)
            await self.bus.publish(done, self.bus.topics.answers)
            return
        plan = await self.state.plan(rid)
        if plan is None:
            return
        results = await self.state.results(rid)
        if core.missing_tasks(plan, results):
            return
        if not await self.state.claim(rid, plan.remaining_seconds() + self.settings.claim_margin_s):
            return  # another replica is composing this answer
        answer, path = await self.compose(plan, results)
        await self.finish(answer, path)

    async def compose(self, plan: Plan, results: dict[str, TaskResult]) -> tuple[Answer, str]:
        if not core.usable(results):
            if plan.remaining_seconds() < 0.5:  # the experts ran out of time, not out of luck
                return core.partial_answer(plan, results, plan.child_fields()), "deadline"
            return core.failed_answer(plan, results), "failed"
        single = core.fast_path(plan, results)
        base = core.base_answer(plan, results)
        calls = core.model_calls(plan, results)
        if single is not None:
            return Answer(**base, content=single.content, usage=core.total_usage(plan, results),
                          model_calls=calls), "fast"
        await self._progress(plan, "judging", f"{len(core.usable(results))} expert answers")
        try:
            judged = await self.inference.chat(
                self.inference.config.for_role("judge"),
                core.judge_messages(plan, core.usable(results)),
                max_tokens=plan.params.max_tokens or self.settings.judge_max_tokens,
                temperature=plan.params.temperature,
                timeout_s=plan.remaining_seconds(),
            )
        except InferenceError as exc:
            log.warning("judge failed, answering with the best expert result: %s", exc)
            best = core.usable(results)[0]
            content = core.with_gaps_note(best.content, base["missing"])
            usage = core.total_usage(plan, results)
            return Answer(**base, content=content, usage=usage, model_calls=calls), "judge_failed"
        finish: FinishReason = "length" if judged.finish_reason == "length" else "stop"
        return Answer(**base, content=judged.content.strip(), finish_reason=finish,
                      usage=core.total_usage(plan, results, judged.usage), model_calls=calls + 1), "judge"

    async def finish(self, answer: Answer, path: str) -> None:
        final = await self.state.put_answer(answer)
        await self.bus.publish(final, self.bus.topics.answers)
        MERGER_FINALIZED.labels(path).inc()
        log.info("answered via %s (missing: %s)", path, ",".join(final.missing) or "-")

    async def _progress(self, plan: Plan, event: str, detail: str) -> None:
        await self.bus.publish(Progress(**plan.child_fields(), stage="merger", event=event, detail=detail),
                               self.bus.topics.progress)

    async def sweep_deadlines(self) -> int:
        """Answer every request whose deadline passed with what it has. Returns how many were answered."""
        answered = 0
        for rid in await self.state.due():
            with bind_response_id(rid):
                if await self.state.answer(rid) is not None:
                    await self.state.forget_deadline(rid)
                    continue
                if not await self.state.claim(rid, self.settings.claim_margin_s):
                    continue
                plan = await self.state.plan(rid)
                results = await self.state.results(rid)
                envelope = plan or next(iter(results.values()), None)
                if envelope is None:
                    await self.state.forget_deadline(rid)
                    continue
                answer = core.partial_answer(plan, results, envelope.child_fields())
                await self.finish(answer, "deadline")
                answered += 1
        return answered

    async def run_sweeper(self) -> None:
        while True:
            try:
                await self.sweep_deadlines()
            except TRANSIENT_ERRORS:
                log.exception("deadline sweep failed; retrying")
            await asyncio.sleep(self.settings.deadline_poll_s)


def create_app(
    settings: MergerSettings | None = None,
    *,
    bus: Bus | None = None,
    inference: InferenceClient | None = None,
    redis: Redis | None = None,
    manage_broker: bool = True,
    sweeper: bool = True,
) -> FastAPI:
    settings = settings or MergerSettings()
    bus = bus or Bus(settings)
    inference = inference or InferenceClient(InferenceConfig.from_settings(settings))
    redis = redis or redis_client(settings.redis_url)
    merger = Merger(settings, bus, inference, redis)
    bus.subscribe(bus.topics.plans, Plan, merger.on_plan)
    bus.subscribe(bus.topics.results, TaskResult, merger.on_result)
    tasks: list[asyncio.Task[None]] = []

    async def start() -> None:
        if sweeper:
            tasks.append(asyncio.create_task(merger.run_sweeper(), name="deadline-sweeper"))

    async def close() -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await inference.aclose()
        await redis.aclose()

    app = create_service_app(settings, bus, checks={"redis": lambda: redis_ready(redis)},
                             on_startup=[start], on_shutdown=[close], manage_broker=manage_broker)
    app.state.merger = merger
    return app
