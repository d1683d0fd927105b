"""expert-worker: expert tasks -> results."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from redis.asyncio import Redis

from expert_worker import core, vision
from expert_worker.scoring import ScoreBoard, ScoresAhead
from expert_worker.settings import ExpertSettings
from expert_worker.tiers import TieredExpert
from moe_core.contracts import ExpertTask, Feedback, Progress, TaskResult
from moe_core.llm.deltas import DeltaSender
from moe_core.llm.images import ImageStore
from moe_core.llm.inference import InferenceClient
from moe_core.runtime import redis_batch
from moe_core.runtime.bus import Bus
from moe_core.stage.resources import Outcomes
from moe_core.stage.runtime import create_stage_app
from moe_core.stage.spec import CancelPolicy, Consumes, MemoPolicy, Notes, Stage

log = logging.getLogger(__name__)


class ExpertWorker:
    def __init__(self, settings: ExpertSettings, bus: Bus, inference: InferenceClient, redis: Redis,
                 outcomes: Outcomes[TaskResult]) -> None:
        self.settings = settings
        self.bus = bus
        self.inference = inference
        self.outcomes = outcomes
        self.redis = redis
        self.images = ImageStore(redis, settings.topic_namespace)
        self.scores = (ScoreBoard(redis, settings.topic_namespace, min_score=settings.score_min,
                                  min_ratings=settings.score_min_ratings, half_life_s=settings.score_half_life_s,
                                  count_neutral=settings.score_count_neutral, order=settings.score_order)
                       if settings.scores_enabled else None)
        self.experts = TieredExpert(inference, self.scores, max_tokens=settings.expert_max_tokens,
                                    max_output_chars=settings.expert_max_output_chars,
                                    parallel=settings.expert_parallel, ensemble=settings.expert_force_ensemble,
                                    timeout_s=settings.expert_timeout_s)

    async def handle(self, task: ExpertTask) -> None:
        # a Cancel stops the model calls of this request (before and during); the model calls' budget give-backs
        # go out with the next call's take or with the stored outcome (moe_core.runtime.redis_batch), before the
        # publish;
        # the scores that route the task and the fleet configuration's overlay are read with the stored outcome and
        # the Cancel mark, in one round trip (the handler is declared models=False: no GET of the overlay before it)
        ahead = self.experts.read_ahead(task)
        async with redis_batch.deferring(self.redis):
            result, _ = await self.outcomes.once(
                f"{task.response_id}:{task.task_id}", lambda: self._run(task, ahead), message=task,
                cancelled=lambda: self._failed(task, "cancelled"),
                expired=lambda: self._failed(task, "deadline passed before the task started"),
                also=self._reads_ahead(ahead))
        event = "failed" if result.error else "answered"
        progress = Progress(**task.child_fields(), stage="expert-worker", event=event, detail=task.category,
                            task_id=task.task_id)
        await self.bus.publish_all([(result, self.bus.topics.results), (progress, self.bus.topics.progress)])

    def _reads_ahead(self, ahead: ScoresAhead | None) -> Callable[[Any], Callable[[list[Any]], None]] | None:
        """What the task's first round trip reads besides its stored outcome: the overlay (laid over the models'
        configuration before the task runs; scores read ahead for other models than it names are read again in
        `run`) and the scores."""
        live = getattr(self.inference, "live", None)
        if live is None:
            return ahead.queue if ahead is not None else None

        def queue(pipe: Any) -> Callable[[list[Any]], None]:
            pipe.get(live.key)
            scores = ahead.queue(pipe) if ahead is not None else None

            def take(replies: list[Any]) -> None:
                self.inference.refreshed(replies[0])
                if scores is not None:
                    scores(replies[1:])
            return take
        return queue

    @staticmethod
    def _failed(task: ExpertTask, error: str) -> TaskResult:
        return TaskResult(**task.child_fields(), task_id=task.task_id, category=task.category, confidence="low",
                          error=error)

    async def _run(self, task: ExpertTask, ahead: ScoresAhead | None = None) -> TaskResult:
        s = self.settings
        messages = core.expert_messages(task, history_turns=s.expert_history_turns,
                                        history_chars=s.expert_history_chars, few_shot_chars=s.expert_few_shot_chars)
        if task.images:  # the vision expert: the images from the gateway's store, in the user's turn
            try:
                messages = await vision.with_images(messages, task, self.images)
            except vision.ImageMissing as exc:
                return self._failed(task, str(exc))
        # a direct task of a live request: its answer goes to the client as it is written (ExpertTask.stream_answer)
        sender = (DeltaSender(self.bus, self.bus.topics.deltas, task.child_fields(), stage="expert-worker")
                  if task.stream_answer else None)
        try:
            result = await self.experts.run(task, messages, ahead, sender)
        except BaseException:
            if sender is not None:
                await sender.abort()
            raise
        if sender is not None:  # what was streamed is on the topic before the result (the merger's answer)
            try:
                await sender.close()
            except Exception as exc:  # the answer itself is whole: the client gets it with the Answer
                log.warning("streamed answer of %s not wholly published: %s", task.task_id, exc)
        if result.error:
            log.warning("expert %s failed: %s", task.category, result.error)
        return result

    async def on_feedback(self, feedback: Feedback) -> None:
        """Scores model x category from users' ratings (group consumer of `feedback`)."""
        if self.scores is not None and await self.scores.record(feedback):
            log.info("rating %d counted for %s", feedback.rating,
                     ", ".join(f"{u.model}/{u.category}" for u in feedback.models_used))


STAGE = Stage(
    name="expert-worker",
    settings=ExpertSettings,
    build=lambda res: ExpertWorker(res.settings, res.bus, res.inference, res.redis, res.outcomes()),
    summary="Expert tasks -> results from the category's models (tiers, scores from users' ratings).",
    # models=False: `handle` reads the fleet configuration's overlay in its first round trip (_reads_ahead); a
    # feedback calls no model
    consumes=(Consumes("tasks_expert", ExpertTask, "handle", per_task=True, models=False),
              Consumes("feedback", Feedback, "on_feedback", models=False,
                       description="ratings score model x category")),
    publishes=("results", "progress", "deltas"),
    needs=("redis", "inference"),
    memo=MemoPolicy("expert:result", TaskResult, ttl="result_ttl_s"),
    cancel=CancelPolicy(),
    heartbeat=True,
    state="worker",
    notes=Notes(keeps="Redis `expert:result:<response_id>:<task_id>` (result memo, TTL "
                    "`MOE_RESULT_TTL_S` 3600 s), `expert:tscore:<ns>:<tenant>:<category>:<model>`"
                    " (a tenant's feedback scores), `expert:score:<ns>:<category>:<model>` "
                    "(global: admin-approved ratings only), `inference:<ns>:*` (fleet state)",
                dedupe="`Memo` keyed by `response_id:task_id`",
                redelivery="republishes the stored result instead of calling the model again; a "
                           "feedback is counted once (`expert:rated:<ns>:<response_id>` set in "
                           "the same Lua script as the scores)"),
)


def create_app(settings: ExpertSettings | None = None, **overrides: Any) -> FastAPI:
    return create_stage_app(STAGE, settings, **overrides)
