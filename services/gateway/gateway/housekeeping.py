"""Client housekeeping on a cheap path: the requests a chat client makes for itself (Open WebUI's chat title,
tags, follow-up suggestions, search queries, autocomplete, image prompt) are answered by one call to a small
model, with no plan, no experts, no graph ingest and no cache write. Still authenticated and metered (the
ChatService around it); audited: the Answer and an AuditEvent (action `housekeeping`, subject its kind) go to
the bus after the reply.

Recognised by the templates' shape (Open WebUI's DEFAULT_*_PROMPT_TEMPLATE, backend/open_webui/config.py):
the last message is the user's and begins with `### Task:`, the chat is quoted inside `<chat_history>`, and
the instructions before it ask for one JSON key (`{ "title": ...`). The key decides the kind; only the
template's own text before `<chat_history>` is read, never the quoted chat. An ordinary question (even one
about titles) has neither the header nor the quoted history and takes the normal path.
"""

from __future__ import annotations

import logging
import re

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from moe_core.bus import Bus
from moe_core.contracts import Answer, AuditEvent, ChatRequest, ErrorInfo, ModelUse
from moe_core.inference import InferenceClient, InferenceError, ModelRef
from moe_core.observability.metrics import GATEWAY_HOUSEKEEPING

log = logging.getLogger(__name__)
HEADER = "### Task:"
HISTORY = ("<chat_history>", "</chat_history>")
# kind -> the JSON key its template asks for (checked in this order)
KINDS: dict[str, str] = {"title": "title", "tags": "tags", "follow_ups": "follow_ups", "queries": "queries",
                         "autocomplete": "text", "image_prompt": "prompt"}
_KEYS = {kind: re.compile(r'\{\s*"' + key + r'"\s*:') for kind, key in KINDS.items()}


class HousekeepingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    housekeeping_enabled: bool = Field(default=True, description="Answer client housekeeping requests (Open "
                                       "WebUI's title, tags, follow-ups, queries, autocomplete) with one small-model "
                                       "call instead of the pipeline")
    housekeeping_model: str = Field(default="", description="Its model, `model` or `model@server`; empty: the "
                                    '"housekeeping" role of MODEL_ASSIGNMENTS, else its "default"')
    housekeeping_max_tokens: int = Field(default=256, ge=16, le=4096, description="Its completion budget")


def recognise(request: ChatRequest) -> str | None:
    """The housekeeping kind of a request, or None for anything else."""
    if request.tools or not request.messages or request.messages[-1].role != "user":
        return None
    if any(m.role not in ("system", "developer") for m in request.messages[:-1]):
        return None  # a client's housekeeping prompt stands alone (a system prompt at most)
    text = request.messages[-1].content.lstrip()
    start = text.find(HISTORY[0])
    if not text.startswith(HEADER) or start < 0 or text.rfind(HISTORY[1]) < start:
        return None
    instructions = text[:start]
    return next((kind for kind, key in _KEYS.items() if key.search(instructions)), None)


class Housekeeping:
    def __init__(self, settings: HousekeepingSettings, inference: InferenceClient, bus: Bus) -> None:
        self.settings = settings
        self.inference = inference
        self.bus = bus
        model = settings.housekeeping_model.strip()
        self.refs = [ModelRef.parse(model)] if model else inference.config.for_role("housekeeping")

    def recognise(self, request: ChatRequest) -> str | None:
        return recognise(request) if self.settings.housekeeping_enabled else None

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
            GATEWAY_HOUSEKEEPING.labels(kind, "error").inc()
            log.warning("housekeeping (%s) model call failed: %s", kind, exc)
            return Answer(**base, finish_reason="error", model_calls=1,
                          error=ErrorInfo(code="housekeeping_failed", message=f"the {kind} model call failed"))
        GATEWAY_HOUSEKEEPING.labels(kind, "answered").inc()
        return Answer(**base, content=completion.content, usage=completion.usage, model_calls=1,
                      finish_reason="length" if completion.finish_reason == "length" else "stop",
                      models_used=[ModelUse(model=completion.model, category=f"housekeeping:{kind}")])

    async def record(self, answer: Answer, kind: str) -> None:
        """After the reply: the Answer and an AuditEvent marking it housekeeping, for the audit trail and
        lineage. Neither is learned from (no cache key, not a cache hit) and nothing is planned."""
        model = answer.models_used[0] if answer.models_used else None
        event = AuditEvent(**answer.child_fields(), actor="gateway", action="housekeeping", subject=kind,
                           reason="client housekeeping request: one small-model call, no plan, no experts, "
                                  "no graph ingest, no cache write",
                           details={"kind": kind, "model": model.model if model else None,
                                    "prompt_tokens": answer.usage.prompt_tokens,
                                    "completion_tokens": answer.usage.completion_tokens,
                                    "error": answer.error.code if answer.error else None})
        try:
            await self.bus.publish_all([(answer, self.bus.topics.answers), (event, self.bus.topics.audit)])
        except Exception:
            log.exception("could not publish the housekeeping answer and audit event")
