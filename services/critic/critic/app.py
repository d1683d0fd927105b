"""critic: drafts of medical and legal answers -> a second pass -> the answer the user gets; a wrong or unsafe
verdict flags the draft's cache entry and cited graph facts like a 1-star rating (critic.flags)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI

from critic import core, flags
from critic.settings import CriticSettings
from moe_core.contracts import Answer, Draft, Feedback, Progress
from moe_core.llm.inference import InferenceClient, InferenceError, ModelRef
from moe_core.runtime.bus import Bus
from moe_core.runtime.idempotency import Memo
from moe_core.runtime.observability.ledger import with_upstream
from moe_core.stage.resources import Outcomes, Resources, stamped
from moe_core.stage.runtime import create_stage_app
from moe_core.stage.spec import CancelPolicy, Consumes, MemoPolicy, Notes, Stage

log = logging.getLogger(__name__)


class Critic:
    def __init__(self, settings: CriticSettings, bus: Bus, inference: InferenceClient,
                 outcomes: Outcomes[Answer], flag_memo: Memo) -> None:
        self.settings = settings
        self.bus = bus
        self.inference = inference
        self.outcomes = outcomes  # stored answers; a Cancel stops the review (the stage's cancel policy)
        self.flag_memo = flag_memo  # the flag of a wrong/unsafe verdict, stored before its answer

    def refs(self) -> list[ModelRef]:
        config = self.inference.config
        return config.roles.get("critic") or config.for_role("judge")

    async def handle(self, draft: Draft) -> None:
        verdict = "republished"

        def decided(answer: Answer, how: str) -> Answer:
            nonlocal verdict
            verdict = how
            return answer

        detail = ""

        async def review() -> Answer:
            nonlocal detail
            await self._progress(draft, "reviewing", ", ".join(draft.categories))
            answer, how, result = await self._review(draft)
            flag = flags.flag_for(draft, result) if result is not None else None
            if flag is not None:  # stored before the answer: a redelivery finds both or neither
                flag = stamped(flag, self.settings.service_name, self.bus.config_digest)  # this run's versions
                await self.flag_memo.put_first(draft.response_id, flag.model_dump_json())
            detail = result.kind if result is not None and not result.confirmed else ""
            return decided(answer, how)

        answer, _ = await self.outcomes.once(
            draft.response_id, review, message=draft,
            cancelled=lambda: decided(core.cancelled(draft), "cancelled"),
            expired=lambda: decided(core.unreviewed(draft, "deadline passed"), "unreviewed"))
        stored_flag = await self.flag_memo.get(draft.response_id)
        if stored_flag is not None:  # published before the answer, the same event on every redelivery
            await self.bus.publish(Feedback.model_validate_json(stored_flag), self.bus.topics.feedback)
        answer = with_upstream(answer, draft.cost)  # the merger's run, on the overhead ledger
        if draft.guarded:  # the tenant's guardrails see the reviewed answer before the user does (and learn it)
            await self.bus.publish(draft.model_copy(update={"answer": answer, "categories": []}), self.bus.topics.guard)
        else:
            await self._publish(draft, answer)
        if verdict != "republished":
            await self._progress(draft, verdict, detail)

    async def _publish(self, draft: Draft, answer: Answer) -> None:
        await self.bus.publish(answer, self.bus.topics.answers)
        if draft.ingest is not None and answer.error is None:
            ingest = draft.ingest.model_copy(update={"answer": answer.content})
            await self.bus.publish(ingest, self.bus.topics.ingest)

    async def _review(self, draft: Draft) -> tuple[Answer, str, core.Verdict | None]:
        try:
            done = await self.inference.chat(self.refs(), core.review_messages(draft),
                                             max_tokens=self.settings.critic_max_tokens, temperature=0.0,
                                             timeout_s=draft.remaining_seconds())
        except InferenceError as exc:
            log.warning("critic model failed, the draft goes out unreviewed: %s", exc)
            return core.unreviewed(draft, "the critic model failed"), "unreviewed", None
        result = core.verdict(done.content)
        if result is None:
            return core.unreviewed(draft, "no verdict"), "unreviewed", None
        answer = core.reviewed(draft, result, done.usage)
        return answer, "confirmed" if result.confirmed else "corrected", result

    async def _progress(self, draft: Draft, event: str, detail: str) -> None:
        await self.bus.publish(Progress(**draft.child_fields(), stage="critic", event=event, detail=detail),
                               self.bus.topics.progress)


def build(res: Resources) -> Critic:
    settings: CriticSettings = res.settings
    memo = res.memo(f"critic:flag:{settings.topic_namespace}", settings.answer_ttl_s)
    return Critic(settings, res.bus, res.inference, res.outcomes(), memo)


STAGE = Stage(
    name="critic",
    settings=CriticSettings,
    build=build,
    summary="Drafts of medical and legal answers -> a second pass -> the answer the user gets; a wrong or "
            "unsafe verdict flags the cache entry and the cited graph facts (feedback, source critic).",
    consumes=(Consumes("drafts", Draft, "handle"),),
    publishes=("answers", "guard", "ingest", "progress", "feedback"),
    needs=("redis", "inference"),
    memo=MemoPolicy("critic:answer", Answer, ttl="answer_ttl_s"),
    cancel=CancelPolicy(),
    notes=Notes(keeps="Redis `critic:answer:<response_id>` (answer memo)",
                dedupe="`Memo` keyed by `response_id`",
                redelivery="republishes the stored final answer (and ingest event) without "
                           "reviewing again"),
)


def create_app(settings: CriticSettings | None = None, **overrides: Any) -> FastAPI:
    return create_stage_app(STAGE, settings, **overrides)
