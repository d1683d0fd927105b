"""critic: drafts of medical and legal answers -> a second pass -> the answer the user gets."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI

from critic import core
from critic.settings import CriticSettings
from moe_core.bus import Bus
from moe_core.contracts import Answer, Draft, Progress
from moe_core.inference import InferenceClient, InferenceError, ModelRef
from moe_core.stage import CancelPolicy, Consumes, MemoPolicy, Stage
from moe_core.stage_resources import Outcomes

log = logging.getLogger(__name__)


class Critic:
    def __init__(self, settings: CriticSettings, bus: Bus, inference: InferenceClient,
                 outcomes: Outcomes[Answer]) -> None:
        self.settings = settings
        self.bus = bus
        self.inference = inference
        self.outcomes = outcomes  # stored answers; a Cancel stops the review (the stage's cancel policy)

    def refs(self) -> list[ModelRef]:
        config = self.inference.config
        return config.roles.get("critic") or config.for_role("judge")

    async def handle(self, draft: Draft) -> None:
        verdict = "republished"

        def decided(answer: Answer, how: str) -> Answer:
            nonlocal verdict
            verdict = how
            return answer

        async def review() -> Answer:
            await self._progress(draft, "reviewing", ", ".join(draft.categories))
            return decided(*await self._review(draft))

        answer, _ = await self.outcomes.once(
            draft.response_id, review, message=draft,
            cancelled=lambda: decided(core.cancelled(draft), "cancelled"),
            expired=lambda: decided(core.unreviewed(draft, "deadline passed"), "unreviewed"))
        await self.bus.publish(answer, self.bus.topics.answers)
        if draft.ingest is not None and answer.error is None:
            ingest = draft.ingest.model_copy(update={"answer": answer.content})
            await self.bus.publish(ingest, self.bus.topics.ingest)
        if verdict != "republished":
            await self._progress(draft, verdict, "")

    async def _review(self, draft: Draft) -> tuple[Answer, str]:
        try:
            done = await self.inference.chat(self.refs(), core.review_messages(draft),
                                             max_tokens=self.settings.critic_max_tokens, temperature=0.0,
                                             timeout_s=draft.remaining_seconds())
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


STAGE = Stage(
    name="critic",
    settings=CriticSettings,
    build=lambda res: Critic(res.settings, res.bus, res.inference, res.outcomes()),
    summary="Drafts of medical and legal answers -> a second pass -> the answer the user gets.",
    consumes=(Consumes("drafts", Draft, "handle"),),
    publishes=("answers", "ingest", "progress"),
    needs=("redis", "inference"),
    memo=MemoPolicy("critic:answer", Answer, ttl="answer_ttl_s"),
    cancel=CancelPolicy(),
)


def create_app(settings: CriticSettings | None = None, **overrides: Any) -> FastAPI:
    return STAGE.create_app(settings, **overrides)
