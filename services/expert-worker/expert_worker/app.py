"""expert-worker: expert tasks -> results."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI
from redis.asyncio import Redis

from expert_worker import core
from expert_worker.scoring import ScoreBoard
from expert_worker.settings import ExpertSettings
from expert_worker.tiers import TieredExpert
from moe_core.bus import Bus, wait_positioned
from moe_core.cancellation import Cancellations, RequestCancelled
from moe_core.contracts import ExpertTask, Feedback, Progress, TaskResult
from moe_core.idempotency import Memo
from moe_core.inference import InferenceClient
from moe_core.service import create_service_app
from moe_core.stores import redis_client, redis_ready

log = logging.getLogger(__name__)


class ExpertWorker:
    def __init__(self, settings: ExpertSettings, bus: Bus, inference: InferenceClient, redis: Redis) -> None:
        self.settings = settings
        self.bus = bus
        self.inference = inference
        self.memo = Memo(redis, "expert:result", settings.result_ttl_s)
        self.cancels = Cancellations(redis, settings.topic_namespace)
        self.scores = (ScoreBoard(redis, settings.topic_namespace, min_score=settings.score_min,
                                  min_ratings=settings.score_min_ratings, half_life_s=settings.score_half_life_s)
                       if settings.scores_enabled else None)
        self.experts = TieredExpert(inference, self.scores, max_tokens=settings.expert_max_tokens,
                                    max_output_chars=settings.expert_max_output_chars,
                                    parallel=settings.expert_parallel)

    async def handle(self, task: ExpertTask) -> None:
        key = f"{task.response_id}:{task.task_id}"
        stored = await self.memo.get(key)
        if stored:
            result = TaskResult.model_validate_json(stored)
        else:
            try:  # a Cancel stops the model calls of this request (before and during)
                result = await self.cancels.run(task.response_id, self._run(task))
            except RequestCancelled:
                result = TaskResult(**task.child_fields(), task_id=task.task_id, category=task.category,
                                    confidence="low", error="cancelled")
            result = TaskResult.model_validate_json(await self.memo.put_first(key, result.model_dump_json()))
        event = "failed" if result.error else "answered"
        progress = Progress(**task.child_fields(), stage="expert-worker", event=event, detail=task.category,
                            task_id=task.task_id)
        await self.bus.publish_all([(result, self.bus.topics.results), (progress, self.bus.topics.progress)])

    async def _run(self, task: ExpertTask) -> TaskResult:
        if task.expired():
            return TaskResult(**task.child_fields(), task_id=task.task_id, category=task.category,
                              confidence="low", error="deadline passed before the task started")
        s = self.settings
        messages = core.expert_messages(task, history_turns=s.expert_history_turns,
                                        history_chars=s.expert_history_chars, few_shot_chars=s.expert_few_shot_chars)
        result = await self.experts.run(task, messages)
        if result.error:
            log.warning("expert %s failed: %s", task.category, result.error)
        return result

    async def on_feedback(self, feedback: Feedback) -> None:
        """Scores model x category from users' ratings (group consumer of `feedback`)."""
        if self.scores is not None and await self.scores.record(feedback):
            log.info("rating %d counted for %s", feedback.rating,
                     ", ".join(f"{u.model}/{u.category}" for u in feedback.models_used))


def create_app(
    settings: ExpertSettings | None = None,
    *,
    bus: Bus | None = None,
    inference: InferenceClient | None = None,
    redis: Redis | None = None,
    manage_broker: bool = True,
) -> FastAPI:
    settings = settings or ExpertSettings()
    bus = bus or Bus(settings)
    redis = redis or redis_client(settings.redis_url)
    inference = inference or InferenceClient.from_settings(settings, redis)
    worker = ExpertWorker(settings, bus, inference, redis)
    bus.subscribe(bus.topics.tasks_expert, ExpertTask, worker.handle)
    bus.subscribe(bus.topics.feedback, Feedback, worker.on_feedback)
    cancel_feed = worker.cancels.subscribe(bus)
    background: list[asyncio.Task[None]] = []

    async def start() -> None:
        await wait_positioned(cancel_feed)
        if inference.fleet is not None:
            background.append(asyncio.create_task(inference.run_heartbeat(), name="inference-heartbeat"))

    async def close() -> None:
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await inference.aclose()
        await redis.aclose()

    app = create_service_app(
        settings, bus, checks={"redis": lambda: redis_ready(redis)}, on_startup=[start], on_shutdown=[close],
        manage_broker=manage_broker,
    )
    app.state.worker = worker
    return app
