"""expert-worker: expert tasks -> results."""

from __future__ import annotations

import logging
import time

from fastapi import FastAPI
from redis.asyncio import Redis

from expert_worker import core
from expert_worker.settings import ExpertSettings
from moe_core.bus import Bus, wait_positioned
from moe_core.cancellation import Cancellations, RequestCancelled
from moe_core.contracts import ExpertTask, Progress, TaskResult
from moe_core.idempotency import Memo
from moe_core.inference import InferenceClient, InferenceConfig, InferenceError
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
        await self.bus.publish(result, self.bus.topics.results)
        event = "failed" if result.error else "answered"
        await self.bus.publish(
            Progress(**task.child_fields(), stage="expert-worker", event=event, detail=task.category,
                     task_id=task.task_id),
            self.bus.topics.progress,
        )

    async def _run(self, task: ExpertTask) -> TaskResult:
        started = time.perf_counter()
        base = {**task.child_fields(), "task_id": task.task_id, "category": task.category}
        if task.expired():
            return TaskResult(**base, confidence="low", error="deadline passed before the task started")
        try:
            completion = await self.inference.chat(
                self.inference.config.for_expert(task.category),
                core.expert_messages(task),
                max_tokens=task.params.max_tokens or self.settings.expert_max_tokens,
                temperature=task.params.temperature,
                timeout_s=task.remaining_seconds(),
                tools=task.tools or None,
                tool_choice=task.tool_choice,
            )
        except InferenceError as exc:
            log.warning("expert %s failed: %s", task.category, exc)
            return TaskResult(**base, confidence="low", error=str(exc),
                              duration_ms=(time.perf_counter() - started) * 1000)
        content, confidence = core.parse_output(completion.content, self.settings.expert_max_output_chars)
        return TaskResult(
            **base,
            content=content,
            confidence=confidence,
            model=completion.model,
            server=completion.server,
            usage=completion.usage,
            duration_ms=(time.perf_counter() - started) * 1000,
            tool_calls=completion.tool_calls,
        )


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
    inference = inference or InferenceClient(InferenceConfig.from_settings(settings))
    redis = redis or redis_client(settings.redis_url)
    worker = ExpertWorker(settings, bus, inference, redis)
    bus.subscribe(bus.topics.tasks_expert, ExpertTask, worker.handle)
    cancel_feed = worker.cancels.subscribe(bus)

    async def start() -> None:
        await wait_positioned(cancel_feed)

    async def close() -> None:
        await inference.aclose()
        await redis.aclose()

    app = create_service_app(
        settings, bus, checks={"redis": lambda: redis_ready(redis)}, on_startup=[start], on_shutdown=[close],
        manage_broker=manage_broker,
    )
    app.state.worker = worker
    return app
