"""Two-tier experts, as in the original: tier-1 models (up to EXPERT_TIER_BOUNDARY_B billion parameters, or
`"tier": 1`) first; tier 2 only when no tier-1 answer is high confidence (a direct task, a trivial question,
stops at the first tier that answers). A forced ensemble (MOE_EXPERT_FORCE_ENSEMBLE, or a named template's
`ensemble: true`) asks both tiers side by side instead.

The models of a category come from EXPERT_TEMPLATES (`{"category": ["phi4:14b", "qwq:32b"]}`; an entry's
`tier` overrides its size), minus those skipped for bad feedback, best score first. Within a tier,
`MOE_EXPERT_PARALLEL` models answer side by side (default 1: the first model that answers, the others are
its failover). The most confident answer wins; on a tie the higher tier, then the order. Usage is the sum
of every call.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from expert_worker import protocol
from expert_worker.scoring import ScoreBoard, ScoresAhead
from moe_core.contracts import ExpertTask, ResponseFormat, TaskResult, Usage
from moe_core.llm import shaping, structured
from moe_core.llm.deltas import DeltaSender
from moe_core.llm.inference import Completion, InferenceClient, InferenceError, ModelRef
from moe_core.llm.inference.client import StreamDelta
from moe_core.llm.templates import ExpertTemplate, of_message
from moe_core.llm.tool_choice import forced_tool, meets, unmet_error
from moe_core.runtime.observability.metrics import EXPERT_CALLS

_RANK = {"high": 0, "medium": 1, "low": 2}


def final_format(task: ExpertTask) -> ResponseFormat | None:
    """The structured output this task's answer must be in: a direct task's answer is the final one (the merger's
    fast path passes it on); every other expert answers the judge in prose."""
    return task.params.response_format if task.direct else None


def constrained(task: ExpertTask) -> dict[str, Any]:
    """The model call's output constraint (moe_core.llm.inference: response_format json_schema, Ollama's format)."""
    return structured.constraint(final_format(task))


def split_tiers(refs: list[ModelRef]) -> list[list[ModelRef]]:
    """[[tier 1...], [tier 2...]] without empty tiers, template order kept inside each."""
    tiers = [[r for r in refs if r.tier == tier] for tier in (1, 2)]
    return [t for t in tiers if t]


def groups(refs: list[ModelRef], parallel: int) -> list[list[ModelRef]]:
    """`parallel` calls side by side; the last one fails over through the remaining models."""
    n = max(1, min(parallel, len(refs)))
    return [[r] for r in refs[: n - 1]] + [refs[n - 1:]]


@dataclass
class Attempt:
    tier: int
    order: int
    output: protocol.ExpertOutput | None = None
    completion: Completion | None = None
    error: InferenceError | None = None

    def summary(self) -> dict[str, Any]:
        if self.completion is None or self.output is None:
            return {"tier": self.tier, "error": str(self.error)[:300]}
        return {"tier": self.tier, "model": self.completion.model, "server": self.completion.server,
                "confidence": self.output.confidence}


def best(attempts: list[Attempt], forced: str | bool = False) -> Attempt | None:
    """The most confident answer; with a forced tool_choice, one that calls the tool as demanded first."""
    answered = [a for a in attempts if a.output is not None]
    if not answered:
        return None
    return min(answered, key=lambda a: (not meets(a.completion, forced), _RANK[a.output.confidence],  # type: ignore[union-attr]
                                        -a.tier, a.order))


class TieredExpert:
    def __init__(self, inference: InferenceClient, scores: ScoreBoard | None, *, max_tokens: int,
                 max_output_chars: int, parallel: int, ensemble: bool = False, timeout_s: float = 900.0) -> None:
        """timeout_s: one model call's timeout (MOE_EXPERT_TIMEOUT_S); the task's deadline bounds it too."""
        self.inference = inference
        self.scores = scores
        self.max_tokens = max_tokens
        self.max_output_chars = max_output_chars
        self.parallel = parallel
        self.ensemble = ensemble
        self.timeout_s = timeout_s

    def call_timeout(self, task: ExpertTask) -> float:
        """The shorter of the expert's per-call timeout and the time its request has left."""
        return min(self.timeout_s, task.remaining_seconds())

    def _ensemble(self, task: ExpertTask) -> bool:
        """Both tiers side by side: configured for every task, or by the task's named template."""
        if task.direct:  # a trivial question: one plain call
            return False
        chosen = of_message(task)  # the models the task carries (a tenant's template), else the named one
        template = self.inference.config.templates.get(chosen) if isinstance(chosen, str) else chosen
        return self.ensemble or bool(getattr(template, "ensemble", False))

    async def refs(self, category: str, tenant_id: str | None = None,
                   template: str | ExpertTemplate | None = None, ahead: ScoresAhead | None = None) -> list[ModelRef]:
        refs = self.inference.config.for_expert(category, template)
        if ahead is not None and ahead.usable is not None and (ahead.category, ahead.refs, ahead.tenant_id) == (
                category, refs, tenant_id):
            return ahead.usable  # read ahead with the task's stored outcome
        return await self.scores.usable(category, refs, tenant_id) if self.scores is not None else refs

    def read_ahead(self, task: ExpertTask) -> ScoresAhead | None:
        """The score reads `run` will need for this task, to be sent ahead (None: it needs none)."""
        if self.scores is None or task.images:  # the vision models are not scored
            return None
        try:
            refs = self.inference.config.for_expert(task.category, of_message(task))
        except InferenceError:  # `run` reports it
            return None
        return ScoresAhead(self.scores, task.category, refs, task.tenant_id)

    async def run(self, task: ExpertTask, messages: list[dict[str, Any]],
                  ahead: ScoresAhead | None = None, sender: DeltaSender | None = None) -> TaskResult:
        """ahead: the scores read ahead (read_ahead), else they are read here. sender: a task marked stream_answer
        streams its answer to the client through it, from a call that runs alone (not side by side)."""
        started = time.perf_counter()
        attempts: list[Attempt] = []
        try:  # the request's expert template (moe_core.llm.templates), else the global assignment
            template = of_message(task)  # a tenant's template: the models the task carries
            refs = (self.inference.config.vision_refs(template) if task.images  # a model that takes images
                    else await self.refs(task.category, task.tenant_id, template, ahead))
        except InferenceError as exc:  # a template this worker does not know: a clear failed result
            attempts.append(Attempt(1, 0, error=exc))
            refs = []
        tiers = split_tiers(refs)
        if self._ensemble(task) and len(tiers) > 1:  # the forced ensemble: every tier at once
            every = [(t[0].tier, group) for t in tiers for group in groups(t, self.parallel)]
            attempts += await asyncio.gather(*(self._call(task, messages, group, tier, i)
                                               for i, (tier, group) in enumerate(every)))
            tiers = []
        forced = forced_tool(task.tool_choice) if task.tools else False
        for tier_refs in tiers:
            tier = tier_refs[0].tier
            batch = groups(tier_refs, self.parallel)
            alone = sender if len(batch) == 1 and not forced else None  # text is no answer to a forced tool call
            done = await asyncio.gather(*(self._call(task, messages, group, tier, len(attempts) + i, alone)
                                          for i, group in enumerate(batch)))
            attempts += done
            top = best(attempts, forced)
            if top is not None and not meets(top.completion, forced):
                continue  # the next tier's models may call the tool
            if top is not None and (top.output.confidence == "high" or top.completion.tool_calls  # type: ignore[union-attr]
                                    or task.direct):  # a direct answer states no confidence: no second tier
                break
        return self._result(task, attempts, (time.perf_counter() - started) * 1000, forced)

    async def _call(self, task: ExpertTask, messages: list[dict[str, Any]], refs: list[ModelRef], tier: int,
                    order: int, sender: DeltaSender | None = None) -> Attempt:
        try:
            if sender is not None:
                completion = await self._streamed(task, messages, refs, sender)
            else:
                completion = await self.inference.chat(
                    refs, messages, max_tokens=task.params.max_tokens or self.max_tokens,
                    temperature=task.params.temperature, timeout_s=self.call_timeout(task),
                    tools=task.tools or None, tool_choice=task.tool_choice, user=task.user,
                    unload=True,  # where a server is configured to, its model leaves VRAM for the judge
                    **constrained(task))
        except InferenceError as exc:
            EXPERT_CALLS.labels(task.category, str(tier), "error").inc()
            return Attempt(tier, order, error=exc)
        output = (protocol.ExpertOutput(content=completion.content.strip()) if final_format(task) is not None
                  else protocol.parse(completion.content, self.max_output_chars))  # structured: as the model wrote it
        EXPERT_CALLS.labels(task.category, str(tier), output.confidence).inc()
        return Attempt(tier, order, output=output, completion=completion)

    async def _streamed(self, task: ExpertTask, messages: list[dict[str, Any]], refs: list[ModelRef],
                        sender: DeltaSender) -> Completion:
        """One model call whose answer goes to the client as the model writes it (ExpertTask.stream_answer),
        shaped for the mode as the merger's fast path shapes the final answer, so what the client saw is the
        start of it. Only the text the output cap surely keeps is streamed (protocol.cap cuts at most a fifth
        of its length back to a space); the rest comes with the answer."""
        structured = final_format(task) is not None  # the JSON as written: not shaped, not capped
        shaper = shaping.Chain(shaping.Trim()) if structured else shaping.for_mode(task.mode)
        kept = 1 << 62 if structured else int((self.max_output_chars - len(protocol.TRUNCATED)) * 0.8)
        raw: list[str] = []
        written = 0  # of the raw text, leading whitespace left out (as protocol.parse strips it)
        end = StreamDelta()
        async for delta in self.inference.stream(
                refs, messages, max_tokens=task.params.max_tokens or self.max_tokens,
                temperature=task.params.temperature, timeout_s=self.call_timeout(task),
                tools=task.tools or None, tool_choice=task.tool_choice, user=task.user,
                unload=True, **constrained(task)):  # an agent's tool calls come assembled on the last delta
            if delta.done:
                end = delta
                continue
            raw.append(delta.content)
            written += len(delta.content.lstrip()) if not written else len(delta.content)
            if written <= kept:
                sender.put("content", shaper.feed(delta.content))
        if written <= kept:
            sender.put("content", shaper.flush())
        return Completion("".join(raw), end.finish_reason or "stop", end.usage or Usage(), end.model, end.server,
                          end.tool_calls)

    def _result(self, task: ExpertTask, attempts: list[Attempt], duration_ms: float,
                forced: str | bool = False) -> TaskResult:
        base = {**task.child_fields(), "task_id": task.task_id, "category": task.category,
                "duration_ms": duration_ms}
        usage = Usage()
        for attempt in attempts:
            if attempt.completion is not None:
                usage = usage + attempt.completion.usage
        top = best(attempts, forced)
        if top is None or top.output is None or top.completion is None:
            # a request too long for a model's context first only when it was every model's reason (the merger
            # then answers the client's 400 context_length_exceeded, not a retryable 503)
            failed = sorted((a.error for a in attempts if a.error), key=lambda e: e.kind == "context_length")
            reasons = "; ".join(map(str, failed))[:2000] or "no model for this category"
            return TaskResult(**base, confidence="low", error=reasons, usage=usage)
        if not meets(top.completion, forced):  # never a text answer where the client demanded a tool call
            return TaskResult(**base, confidence="low", usage=usage, model=top.completion.model,
                              server=top.completion.server, data={"attempts": [a.summary() for a in attempts]},
                              error=unmet_error(forced))
        data = {**top.output.data(), "attempts": [a.summary() for a in attempts]}
        return TaskResult(**base, content=top.output.content, confidence=top.output.confidence,
                          finish_reason="length" if top.completion.finish_reason == "length" else "stop",
                          model=top.completion.model, server=top.completion.server, usage=usage, data=data,
                          tool_calls=top.completion.tool_calls)
