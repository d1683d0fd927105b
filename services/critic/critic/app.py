"""critic: drafts of medical and legal answers -> a second pass -> the answer the user gets."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from redis.asyncio import Redis

from critic import core
from critic.settings import CriticSettings
from moe_core.bus import Bus, wait_positioned
from moe_core.cancellation import Cancellations, RequestCancelled
from moe_core.contracts import Answer, Draft, Progress
from moe_core.idempotency import Memo
from moe_core.inference import InferenceClient, InferenceError, ModelRef
from moe_core.service import create_service_app
from moe_core.stores import redis_client, redis_ready

log = logging.getLogger(__name__)


class Critic:
    def __init__(self, settings: CriticSettings, bus: Bus, inference: InferenceClient, redis: Redis) -> None:
        self.settings = settings
        self.bus = bus
        self.inference = inference
        self.memo = Memo(redis, "critic:answer", settings.answer_ttl_s)
        self.cancels = Cancellations(redis, settings.topic_namespace)

    def refs(self) -> list[ModelRef]:
        config = self.inference.config
        return config.roles.get("critic") or config.for_role("judge")

    async def handle(self, draft: Draft) -> None:
        stored = await self.memo.get(draft.response_id)
        if stored:
            answer = Answer.model_validate_json(stored)
            outcome = "republished"
        else:
            await self._progress(draft, "reviewing", ", ".join(draft.categories))
            answer, outcome = await self._review(draft)
            answer = Answer.model_validate_json(await self.memo.put_first(draft.response_id,
                                                                          answer.model_dump_json()))
        await self.bus.publish(answer, self.bus.topics.answers)
        if draft.ingest is not None and answer.error is None:
            ingest = draft.ingest.model_copy(update={"answer": answer.content})
            await self.bus.publish(ingest, self.bus.topics.ingest)
        if outcome != "republished":
            await self._progress(draft, outcome, "")

    async def _review(self, draft: Draft) -> tuple[Answer, str]:
        if draft.expired():
            return core.unreviewed(draft, "deadline passed"), "unreviewed"
        try:
            done = await self.cancels.run(draft.response_id, self.inference.chat(
                self.refs(),
                core.review_messages(draft),
                max_tokens=self.settings.critic_max_tokens,
                temperature=0.0,
                timeout_s=draft.remaining_seconds(),
            ))
        except RequestCancelled:
            return core.cancelled(draft), "cancelled"
        except InferenceError as exc:
            log.warning("critic model failed, the draft goes out unreviewed: %s", exc)
            return core.unreviewed(draft, "the critic model failed"), "unreviewed"
        result = core.verdict(done.content)
        if result is None:
            return core.unreviewed(draft, "no verdict"), "unreviewed"
        answer = core.reviewed(draft, result, done.usage)
        return answer, "confirmed" if result.confirmed else "corrected"

    async def _progress(self, draft: Draft, event: str, detail: str) -> None:
        await self.bus.publish(Progress(**draft.child_fields(), stage="critic", event=event, detail=detail),
                               self.bus.topics.progress)


def create_app(
    settings: CriticSettings | None = None,
    *,
    bus: Bus | None = None,
    inference: InferenceClient | None = None,
    redis: Redis | None = None,
    manage_broker: bool = True,
) -> FastAPI:
    settings = settings or CriticSettings()
    bus = bus or Bus(settings)
    redis = redis or redis_client(settings.redis_url)
    inference = inference or InferenceClient.from_settings(settings, redis)  # fleet-aware (the workers beat)
    critic = Critic(settings, bus, inference, redis)
    bus.subscribe(bus.topics.drafts, Draft, critic.handle)
    cancel_feed = critic.cancels.subscribe(bus)

    async def start() -> None:
        await wait_positioned(cancel_feed)

    async def close() -> None:
        await inference.aclose()
        await redis.aclose()

    app = create_service_app(settings, bus, checks={"redis": lambda: redis_ready(redis)}, on_startup=[start],
                             on_shutdown=[close], manage_broker=manage_broker)
    app.state.critic = critic
    return app
