"""Composing one answer from a request's results: tool calls, the fast path, or thinking + the judge
(streamed token by token to the `deltas` topic when nobody else must see the answer first)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from merger import core, provenance, synthesis
from merger.insight import InsightStripper
from merger.settings import MergerSettings
from merger.source_labels import LabelStripper
from moe_core.contracts import (
    Answer,
    ErrorInfo,
    Plan,
    Progress,
    ResponseFormat,
    SynthesisInsight,
    TaskResult,
    Usage,
)
from moe_core.contracts.messages import FinishReason
from moe_core.llm import shaping, structured
from moe_core.llm.deltas import DeltaSender
from moe_core.llm.inference import InferenceClient, InferenceError, ModelRef
from moe_core.llm.modes import Mode, get_mode
from moe_core.llm.templates import ExpertTemplate, of_message
from moe_core.runtime.bus import Bus

log = logging.getLogger(__name__)


@dataclass
class Composition:
    answer: Answer
    path: str  # tools | fast | judge | judge_failed | failed | deadline
    lead: TaskResult | None = None  # the result that carried the answer (for learning)
    used: int = 0  # how many results the answer merged
    insight: SynthesisInsight | None = None  # the judge's insight block (stripped from the answer)


@dataclass
class Generated:
    text: str = ""
    usage: Usage | None = None
    finish: str | None = None
    refs: list[str] | None = None
    calls: int = 0
    insight: SynthesisInsight | None = None


def checked(composition: Composition, fmt: ResponseFormat | None) -> Composition:
    """A structured request's answer checked against its format (moe_core.llm.structured): one that does not match is
    an error, never stored in a cache nor sent to the critic as a draft (path `failed`)."""
    answer = structured.checked(composition.answer, fmt)
    return composition if answer is composition.answer else Composition(answer, "failed", composition.lead)


class AsIs:
    """A stripper that keeps everything (a structured answer's judge: no source labels, insight or [REF:] tags)."""

    refs: list[str] = []

    def feed(self, text: str) -> str:
        return text

    def flush(self) -> str:
        return ""

    def insight(self) -> SynthesisInsight | None:
        return None


def cancelled_answer(plan: Plan, results: dict[str, TaskResult]) -> Answer:
    """The client went away: the request ends here (nobody reads it; the record shows what was spent)."""
    return Answer(**core.base_answer(plan, results), finish_reason="error", usage=core.total_usage(plan, results),
                  model_calls=core.model_calls(plan, results),
                  error=ErrorInfo(code="cancelled", message="the client cancelled the request"))


class Composer:
    def __init__(self, settings: MergerSettings, bus: Bus, inference: InferenceClient) -> None:
        self.settings = settings
        self.bus = bus
        self.inference = inference

    def _refs(self, role: str, fallback: str, template: str | ExpertTemplate | None = None) -> list[ModelRef]:
        """The role's models: the request's expert template first (moe_core.llm.templates), then the global roles."""
        return self.inference.config.for_role(role, template, fallback=fallback)

    def settle(self, plan: Plan, results: dict[str, TaskResult]) -> Composition | None:
        """The answer when no model is needed (tool calls, nothing usable, the fast path), else None: such an
        answer is a function of the stored plan and results, so it needs no claim (two replicas would write the
        same; the answer's SET NX keeps the first)."""
        mode = get_mode(plan.mode)
        base: dict[str, Any] = core.base_answer(plan, results)
        missing = base["missing"]
        usage, calls = core.total_usage(plan, results), core.model_calls(plan, results)
        caller = synthesis.with_tool_calls(results)
        if caller is not None:
            base["sources"] = core.result_sources([caller])
            return Composition(Answer(**base, content=caller.content, tool_calls=caller.tool_calls, usage=usage,
                                      model_calls=calls), "tools", caller, 1)
        if not core.usable(results):
            if plan.remaining_seconds() < 0.5:  # the workers ran out of time, not out of luck
                return Composition(core.partial_answer(plan, results, plan.child_fields()), "deadline")
            return Composition(core.failed_answer(plan, results), "failed")
        fmt = plan.params.response_format
        single = synthesis.fast_path(plan, results, mode)
        if single is None:
            return None
        prefix = synthesis.render_plan(plan) + "\n\n" if mode.show_plan and fmt is None else ""
        base["sources"] = core.result_sources([single])
        content = (single.content if fmt is not None  # a direct task's constrained answer, as written
                   else core.with_gaps_note(prefix + shaping.shape(mode, single.content), missing))
        answer = Answer(**base, content=content, usage=usage, model_calls=calls,
                        finish_reason=single.finish_reason)  # cut at max_tokens: length, as it was
        return checked(Composition(answer, "fast", single, 1), fmt)

    async def compose(self, plan: Plan, results: dict[str, TaskResult], *, stream: bool,
                      muted: bool = False) -> Composition:
        """The answer that needs a model: called (under the claim) only when `settle` gave None for the same plan
        and results. stream=False: nothing of the content is published (a critic sees it first); reasoning is,
        unless muted (the tenant's guardrails see the answer first)."""
        mode = get_mode(plan.mode)
        base: dict[str, Any] = core.base_answer(plan, results)
        usage, calls = core.total_usage(plan, results), core.model_calls(plan, results)
        good = synthesis.dedup(core.usable(results))
        fmt = plan.params.response_format  # structured output: the final call's JSON, nothing added or reshaped
        prefix = synthesis.render_plan(plan) + "\n\n" if mode.show_plan and fmt is None else ""
        sender = DeltaSender(self.bus, self.bus.topics.deltas, plan.child_fields(), muted=muted)
        try:
            composition = await self._synthesise(plan, good, mode, base, usage, calls, sender, stream, prefix)
        except BaseException:
            await sender.abort()
            raise
        await sender.close()
        return checked(composition, fmt)

    async def _synthesise(self, plan: Plan, good: list[TaskResult], mode: Mode, base: dict[str, Any], usage: Usage,
                          calls: int, sender: DeltaSender, stream: bool, prefix: str) -> Composition:
        thought = Generated()
        if self.settings.thinking and synthesis.needs_thinking(plan, good, mode, self.settings.thinking_all_high):
            await self.progress(plan, "thinking", f"{len(good)} results")
            thought = await self._think(plan, good, sender)
        await self.progress(plan, "judging", f"{len(good)} results")
        judged = await self._judge(plan, good, thought.text, mode, sender if stream else None, prefix)
        total = usage + (thought.usage or Usage())
        lead = next((r for r in good if r.kind in ("expert", "tool")), good[0])  # what answers, not context
        if judged is None or not judged.text.strip():  # the judge failed or said nothing: the best result
            spent = judged or Generated()
            if plan.params.response_format is not None:  # the results are prose: only the judge writes the JSON
                return Composition(Answer(
                    **base, finish_reason="error", usage=total + (spent.usage or Usage()),
                    model_calls=calls + thought.calls + spent.calls, reasoning=thought.text,
                    error=ErrorInfo(code="inference_unavailable", message="the judge, which writes the answer in the "
                                    "requested response_format, could not answer")), "failed")
            if lead.kind not in core.ANSWERING:  # only context came back (graph facts, web snippets): no answer
                gaps = ", ".join(base["missing"]) or "the experts"
                return Composition(Answer(
                    **base, finish_reason="error", usage=total + (spent.usage or Usage()),
                    model_calls=calls + thought.calls + spent.calls, reasoning=thought.text,
                    error=ErrorInfo(code="inference_unavailable", message=f"no expert could answer ({gaps}) and the "
                                    "judge could not answer from the context")), "failed")
            base["sources"] = core.result_sources([lead])
            content = core.with_gaps_note(prefix + shaping.shape(mode, lead.content), base["missing"])
            answer = Answer(**base, content=content, usage=total + (spent.usage or Usage()),
                            model_calls=calls + thought.calls + spent.calls, reasoning=thought.text)
            return Composition(answer, "judge_failed", lead, 1)
        cited = provenance.graph_sources(judged.refs or [], good)
        base["sources"] = core.result_sources(good) + cited + provenance.graph_context(good, cited)
        finish: FinishReason = "length" if judged.finish == "length" else "stop"
        content = (judged.text if plan.params.response_format is not None  # the JSON as the judge wrote it
                   else core.with_gaps_note(prefix + synthesis.keep_computed(judged.text, good), base["missing"]))
        answer = Answer(**base, content=content,
                        finish_reason=finish, usage=total + (judged.usage or Usage()),
                        model_calls=calls + thought.calls + judged.calls, reasoning=thought.text)
        return Composition(answer, "judge", lead, len(good), judged.insight if len(good) >= 2 else None)

    async def _think(self, plan: Plan, good: list[TaskResult], sender: DeltaSender) -> Generated:
        """A short reasoning trace, streamed as reasoning deltas. A failure leaves what was streamed."""
        trim = shaping.Trim()
        out = Generated()
        try:
            async for delta in self.inference.stream(
                self._refs("thinking", "judge", of_message(plan)),
                synthesis.thinking_messages(plan, good),
                max_tokens=self.settings.thinking_max_tokens,
                temperature=plan.params.temperature,
                timeout_s=min(self.settings.judge_timeout_s,
                              plan.remaining_seconds() * self.settings.thinking_time_share),
            ):
                if delta.done:
                    out.usage, out.calls = delta.usage, 1
                    continue
                piece = trim.feed(delta.content)
                out.text += piece
                sender.put("reasoning", piece)
        except InferenceError as exc:
            log.warning("thinking step failed, judging without it: %s", exc)
        return out

    async def _judge(self, plan: Plan, good: list[TaskResult], reasoning: str, mode: Mode,
                     sender: DeltaSender | None, prefix: str) -> Generated | None:
        """The judge's answer, stripped of copied source headers (merger.source_labels), its insight block
        (merger.insight) and [REF:] tags and shaped for the mode as it streams. Of a structured request, the JSON
        its call was constrained to, as written (leading whitespace aside)."""
        fmt = plan.params.response_format
        insight: InsightStripper | AsIs = InsightStripper() if fmt is None else AsIs()
        stripper: provenance.RefStripper | AsIs = provenance.RefStripper() if fmt is None else AsIs()
        labels: LabelStripper | AsIs = LabelStripper() if fmt is None else AsIs()  # structured: none was asked for
        shaper = shaping.for_mode(mode) if fmt is None else shaping.Chain(shaping.Trim())  # nor is it shaped
        out = Generated(calls=1)

        def emit(text: str) -> None:
            out.text += text
            if sender is not None:
                sender.put("content", text)

        emit(prefix)
        try:
            async for delta in self.inference.stream(
                self._refs("judge", "judge", of_message(plan)),
                synthesis.judge_messages(plan, good, reasoning, mode, self.settings.judge_insight,
                                         self.settings.judge_cache_example_always),
                max_tokens=plan.params.max_tokens or self.settings.judge_max_tokens,
                temperature=plan.params.temperature,
                timeout_s=min(self.settings.judge_timeout_s, plan.remaining_seconds()),
                **structured.constraint(fmt),
            ):
                if delta.done:
                    out.usage, out.finish = delta.usage, delta.finish_reason
                    continue
                emit(shaper.feed(stripper.feed(insight.feed(labels.feed(delta.content)))))
        except InferenceError as exc:
            log.warning("judge failed, answering with the best result: %s", exc)
            return None
        tail = insight.feed(labels.flush()) + insight.flush()
        emit(shaper.feed(stripper.feed(tail) + stripper.flush()) + shaper.flush())
        out.insight = insight.insight()
        out.text = out.text[len(prefix):]  # the caller puts the prefix in front of the final text
        out.refs = stripper.refs
        return out

    async def progress(self, plan: Plan, event: str, detail: str) -> None:
        """A Progress event of the merger for `plan`'s request."""
        await self.bus.publish(*self.progress_event(plan, event, detail))

    def progress_event(self, plan: Plan, event: str, detail: str) -> tuple[Progress, str]:
        """The Progress event and its topic, to publish with another message (Bus.publish_all)."""
        return Progress(**plan.child_fields(), stage="merger", event=event, detail=detail), self.bus.topics.progress
