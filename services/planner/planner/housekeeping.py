"""A client's housekeeping request (moe_core.llm.housekeeping: recognised and routed by the edge to the
`housekeeping` topic) answered by one call to a small model with the client's own messages: no plan, no
experts, no graph ingest, no cache write. The Answer goes to `answers` like any other; the edge audited the
routing when it published the request."""

from __future__ import annotations

import logging

from moe_core.contracts import Answer, ChatRequest, ErrorInfo, ModelUse
from moe_core.llm.housekeeping import HousekeepingSettings, recognise
from moe_core.llm.inference import InferenceClient, InferenceError, ModelRef
from moe_core.runtime.bus import Bus
from moe_core.runtime.observability.metrics import PLANNER_HOUSEKEEPING

log = logging.getLogger(__name__)


class Housekeeping:
    def __init__(self, settings: HousekeepingSettings, inference: InferenceClient, bus: Bus) -> None:
        self.settings = settings
        self.inference = inference
        self.bus = bus
        model = settings.housekeeping_model.strip()
        self.refs = [ModelRef.parse(model)] if model else inference.config.for_role("housekeeping")

    async def handle(self, request: ChatRequest) -> None:
        await self.bus.publish(await self.answer(request, recognise(request) or "other"), self.bus.topics.answers)

    async def answer(self, request: ChatRequest, kind: str) -> Answer:
        """One model call with the client's own messages; a failure is an Answer with its error (503)."""
        budget = self.settings.housekeeping_max_tokens
        messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.content}
                    for m in request.messages]
        base = {**request.child_fields(), "mode": request.mode}
        try:
            completion = await self.inference.chat(
                self.refs, messages, max_tokens=min(request.params.max_tokens or budget, budget),
                temperature=request.params.temperature, timeout_s=request.remaining_seconds(), user=request.user)
        except InferenceError as exc:
            PLANNER_HOUSEKEEPING.labels(kind, "error").inc()
            log.warning("housekeeping (%s) model call failed: %s", kind, exc)
            return Answer(**base, finish_reason="error", model_calls=1,
                          error=ErrorInfo(code="housekeeping_failed", message=f"the {kind} model call failed"))
        PLANNER_HOUSEKEEPING.labels(kind, "answered").inc()
        return Answer(**base, content=completion.content, usage=completion.usage, model_calls=1,
                      finish_reason="length" if completion.finish_reason == "length" else "stop",
                      models_used=[ModelUse(model=completion.model, category=f"housekeeping:{kind}")])
