"""merger: plans + results -> one answer per request (tool calls, the fast path, or thinking + judge),
streamed as it is generated; medical and legal answers go to the critic first; every answer is learned."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from redis.asyncio import Redis

from merger import core, fallback, learning, synthesis
from merger.compose import Composer, Composition, cancelled_answer
from merger.reads import Snapshot
from merger.settings import MergerSettings
from merger.state import MergerState
from moe_core.contracts import Cancel, Draft, Plan, TaskResult
from moe_core.llm.guardrails import GuardrailBook
from moe_core.llm.inference import InferenceClient
from moe_core.runtime import redis_batch
from moe_core.runtime.bus import TRANSIENT_ERRORS, Bus
from moe_core.runtime.cancellation import Cancellations, RequestCancelled
from moe_core.runtime.observability import bind_response_id
from moe_core.runtime.observability.metrics import MERGER_FINALIZED
from moe_core.stage.resources import Resources
from moe_core.stage.runtime import create_stage_app
from moe_core.stage.spec import CancelPolicy, Consumes, Notes, Stage

log = logging.getLogger(__name__)


class Merger:
    def __init__(self, settings: MergerSettings, bus: Bus, inference: InferenceClient, redis: Redis,
                 cancels: Cancellations | None = None) -> None:
        self.settings = settings
        self.bus = bus
        self.inference = inference
        self.cancels = cancels or Cancellations(redis, settings.topic_namespace)
        # every snapshot reads the request's Cancel mark and the fleet configuration's overlay too: composing needs
        # no round trip of its own for either (the handlers are declared models=False: no GET before each message)
        live = getattr(inference, "live", None)
        self.state = MergerState(redis, settings.topic_namespace, settings.state_ttl_s, cancel_key=self.cancels.key,
                                 overlay_key=live.key if live is not None else None)
        self.composer = Composer(settings, bus, inference)
        self.guard = GuardrailBook.from_settings(settings)  # tenants with output rules: their answers go to `guard`
        self.sweeper = True
        self._waiting: dict[str, asyncio.Task[None]] = {}  # requests another replica held the claim of

    def background(self) -> list[Callable[[], Awaitable[None]]]:
        return [self.run_sweeper] if self.sweeper else []

    async def on_plan(self, plan: Plan) -> None:
        await self.try_finish(plan.response_id, await self.state.save_plan(plan))

    async def on_result(self, result: TaskResult) -> None:
        await self.try_finish(result.response_id, await self.state.save_result(result))

    async def on_cancel(self, cancel: Cancel) -> None:
        """Every replica sees every Cancel: the one that gets the claim closes the request at once."""
        rid = cancel.response_id
        snap = await self.state.snapshot(rid)  # answer, draft and plan in one round trip
        if snap.answer is not None or snap.draft is not None:
            return
        plan = snap.plan
        if plan is None:  # not planned yet: try_finish sees the mark when the plan arrives
            return
        if await self.state.claim(rid, plan.remaining_seconds() + self.settings.claim_margin_s):
            await self.finish(plan, Composition(cancelled_answer(plan, await self.state.results(rid)), "cancelled"))

    async def try_finish(self, rid: str, snap: Snapshot | None = None) -> None:
        """`snap`: the request's state as the message's own write read it back (else read here, at once)."""
        snap = snap or await self.state.snapshot(rid)
        if await self._republish(snap):
            return
        checked = snap.cancelled is not None  # the Cancel mark was read with the state: no round trip of its own
        self.cancels.note(rid, bool(snap.cancelled))
        plan = snap.plan
        if plan is None:
            return
        if core.missing_tasks(plan, snap.raw_results):  # (no result is parsed before the last one is in)
            return
        results = snap.results
        extra = fallback.fallback_task(plan, results, self.settings.research_fallback,
                                       self.settings.research_fallback_min_s)
        if extra is not None and not await self.cancels.is_cancelled(rid, checked=checked):
            if await self.state.add_fallback(rid, extra):
                # one Produce request: the client's progress event (read by the edge alone) needs nothing of the
                # research task, nor the research service anything of it, so their order is free
                await self.bus.publish_all([
                    (fallback.research_message(plan, extra), self.bus.topics.tasks_research),
                    self.composer.progress_event(plan, "researching", "low-confidence results: searching the web")])
                return
            await self.try_finish(rid)  # another replica added it: look again, now with the research task
            return
        settled = self.composer.settle(plan, results)  # no model call: no claim, lease or deferred writes
        if settled is not None:
            if await self.cancels.is_cancelled(rid, checked=checked):
                settled = Composition(cancelled_answer(plan, results), "cancelled")
            await self.finish(plan, settled)
            return
        token, lease = uuid.uuid4().hex, self.settings.claim_lease_s
        if not await self.state.claim(rid, lease, token):
            self._look_again_later(rid)  # another replica composes it, or died doing so: its lease lapses
            return
        if self.state.overlay_key is not None:  # the configuration in force, as read with this snapshot
            self.inference.refreshed(snap.overlay)
        renewing = asyncio.create_task(self._renew(rid, token, lease))
        try:  # a model call's budget give-back goes out with the next call's take or with the stored answer
            async with redis_batch.deferring(self.state.redis):
                try:
                    guarded = self.guard.guards(plan.tenant_id)
                    stream = not synthesis.critic_pending(plan) and not guarded
                    composition = await self.cancels.run(rid, self.composer.compose(plan, results, stream=stream,
                                                                                    muted=guarded), checked=checked)
                except RequestCancelled:
                    composition = Composition(cancelled_answer(plan, results), "cancelled")
                await self.finish(plan, composition)
        finally:
            renewing.cancel()

    async def _renew(self, rid: str, token: str, lease: float) -> None:
        """Hold the lease while composing (a judge call may take longer than one lease)."""
        while True:
            await asyncio.sleep(lease / 3)
            try:
                if not await self.state.renew(rid, token, lease):
                    log.warning("the claim on %s lapsed while composing", rid)
                    return
            except TRANSIENT_ERRORS as exc:
                log.warning("could not renew the claim on %s: %s", rid, exc)

    def _look_again_later(self, rid: str) -> None:
        """Finish the request once the other replica's lease could have lapsed, unless it answered by then."""
        if rid in self._waiting:
            return
        task = asyncio.create_task(self._look_again(rid))
        self._waiting[rid] = task
        task.add_done_callback(lambda done: self._waiting.pop(rid) if self._waiting.get(rid) is done else None)

    async def _look_again(self, rid: str) -> None:
        await asyncio.sleep(self.settings.claim_lease_s)
        self._waiting.pop(rid, None)
        with bind_response_id(rid):
            try:
                snap = await self.state.snapshot(rid)
                if snap.answer is None and snap.draft is None:
                    await self.try_finish(rid, snap)
            except TRANSIENT_ERRORS as exc:  # the deadline sweep still answers it
                log.warning("could not look at %s again: %s", rid, exc)

    async def _republish(self, snap: Snapshot) -> bool:
        """A redelivery after the outcome was stored: publish the stored outcome again (its first publish may have
        been lost with the replica that stored it). A message new to the request (a task's result arriving after
        the request was answered, e.g. cancelled) changes nothing and publishes nothing: the outcome is not
        published twice. True: the request is finished."""
        if (snap.answer is not None or snap.draft is not None) and snap.fresh:
            return True
        done, ingest = snap.answer, snap.ingest
        if done is not None:
            await self.bus.publish_all([(done, self.bus.topics.answers),
                                        *([(ingest, self.bus.topics.ingest)] if ingest is not None else [])])
            return True
        draft = snap.draft
        if draft is not None:
            await self.bus.publish(draft, self._draft_topic(draft))
            return True
        return False

    async def finish(self, plan: Plan | None, composition: Composition) -> None:
        answer, path = composition.answer, composition.path
        ingest = learning.ingest_event(answer, composition.lead, composition.used, composition.insight)
        guarded = self.guard.guards(answer.tenant_id)
        if plan is not None and synthesis.critic_pending(plan) and path in ("fast", "judge", "judge_failed"):
            draft = await self.state.put_draft(Draft(
                **plan.child_fields(), question=plan.question, categories=[t.category for t in plan.tasks],
                answer=answer, ingest=ingest, guarded=guarded, response_format=plan.params.response_format), ingest)
            # as the research task's above: the critic reads drafts, the edge alone progress (order free)
            await self.bus.publish_all([(draft, self.bus.topics.drafts), self.composer.progress_event(
                plan, "critic", "the answer goes to the critic first")])
        elif guarded:  # no categories: a draft without the critic's categories goes to `guard` (_draft_topic)
            draft = await self.state.put_draft(Draft(
                **answer.child_fields(), question=answer.question or (plan.question if plan else ""),
                answer=answer, ingest=ingest, guarded=True,
                response_format=plan.params.response_format if plan else None), ingest)
            await self.bus.publish(draft, self.bus.topics.guard)
        else:
            final = await self.state.put_answer(answer, ingest)  # the ingest event in the same round trip
            await self.bus.publish_all([(final, self.bus.topics.answers),
                                        *([(ingest, self.bus.topics.ingest)] if ingest is not None else [])])
        MERGER_FINALIZED.labels(path).inc()
        log.debug("answered via %s (missing: %s)", path, ",".join(answer.missing) or "-")

    def _draft_topic(self, draft: Draft) -> str:
        """A stored draft goes where it went first: the critic's categories to the critic, else the guardrail."""
        critic = any(c in synthesis.CRITIC_CATEGORIES for c in draft.categories)
        return self.bus.topics.drafts if critic else self.bus.topics.guard

    async def sweep_deadlines(self) -> int:
        """Answer every request whose deadline passed with what it has. Returns how many were answered."""
        answered = 0
        for rid in await self.state.due():
            with bind_response_id(rid):
                if await self.state.answer(rid) is not None or await self.state.draft(rid) is not None:
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
                await self.finish(None, Composition(answer, "deadline"))
                answered += 1
        return answered

    async def run_sweeper(self) -> None:
        while True:
            try:
                await self.sweep_deadlines()
            except TRANSIENT_ERRORS:
                log.exception("deadline sweep failed; retrying")
            await asyncio.sleep(self.settings.deadline_poll_s)


def build(res: Resources) -> Merger:
    merger = Merger(res.settings, res.bus, res.inference, res.redis, res.cancels)
    merger.sweeper = bool(res.extra.get("sweeper", True))
    return merger


STAGE = Stage(
    name="merger",
    settings=MergerSettings,
    build=build,
    summary="Plans + results -> one answer per request (tool calls, the fast path, or thinking + judge), "
            "streamed as it is generated; medical and legal answers go to the critic first; every answer "
            "is learned.",
    # models=False: a message calls a model only when it completes the request, and the fleet configuration's
    # overlay is read with the request's state in the message's own round trip (merger.reads), not by a GET before it
    consumes=(Consumes("plans", Plan, "on_plan", models=False), Consumes("results", TaskResult, "on_result",
                                                                           models=False)),
    publishes=("answers", "drafts", "guard", "deltas", "ingest", "progress", "tasks_research"),
    needs=("redis", "inference"),
    cancel=CancelPolicy(handler="on_cancel"),
    notes=Notes(keeps="Redis "
                    "`merger:<namespace>:<response_id>:{plan,fallback,results,answer,draft,ingest,claim}`"
                    " + sorted set `merger:<namespace>:deadlines`",
                dedupe="plan `SET NX`; each result `HSETNX` by `task_id`; the research fallback "
                       "task `SET NX` (added once); a **claim** key (`SET NX` with expiry) elects"
                       " the one replica that composes; the answer (or draft) and its ingest "
                       "event are stored with `SET NX` — **first answer wins**",
                redelivery="if an answer (draft) is stored, republishes it and its ingest event"),
)


def create_app(settings: MergerSettings | None = None, **overrides: Any) -> FastAPI:
    """Overrides (tests): bus, inference, redis, manage_broker, sweeper (False: no deadline sweeper)."""
    return create_stage_app(STAGE, settings, **overrides)
