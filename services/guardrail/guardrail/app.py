"""guardrail: the answers of tenants with output guardrails -> checked against the tenant's rules -> the
answer the user gets: as it was, redacted, or replaced by a refusal (finish_reason content_filter). A block
quarantines the answer, a redaction is journalled, both are audit records; only an answer that was not
blocked is learned (its IngestEvent goes out with the content the user got)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI

from guardrail.settings import GuardrailSettings
from moe_core.contracts import Answer, Draft, Progress
from moe_core.llm import structured
from moe_core.llm.guardrails import GuardrailBook, check, outcomes
from moe_core.llm.guardrails.quarantine import Decision, QuarantineStore
from moe_core.runtime.bus import Bus
from moe_core.runtime.observability.ledger import with_upstream
from moe_core.runtime.observability.metrics import GUARDRAIL_DECISIONS
from moe_core.stage.resources import Outcomes, Resources
from moe_core.stage.runtime import create_stage_app
from moe_core.stage.spec import Consumes, MemoPolicy, Notes, Stage

log = logging.getLogger(__name__)


class Guardrail:
    def __init__(self, settings: GuardrailSettings, bus: Bus, book: GuardrailBook, outcomes: Outcomes[Answer],
                 store: QuarantineStore) -> None:
        self.settings = settings
        self.bus = bus
        self.book = book
        self.outcomes = outcomes
        self.store = store

    async def handle(self, draft: Draft) -> None:
        decision: Decision | None = None

        async def decide() -> Answer:
            nonlocal decision
            rules = self.book.rules_for(draft.tenant_id, "output")
            answer = draft.answer
            verdict = check(answer.content, rules, self.book.timeout_s)  # a check that fails blocks (fail closed)
            for hit in verdict.hits:
                GUARDRAIL_DECISIONS.labels("output", hit.rule.id, hit.rule.action).inc()
            if verdict.errors and verdict.blocked_by is not None:
                GUARDRAIL_DECISIONS.labels("output", verdict.blocked_by.id, "block").inc()
            if verdict.action == "pass":
                return answer
            decision = await self.store.put_first(Decision.of(
                draft.response_id, draft.tenant_id, "output", verdict, draft.question, answer.content))
            await self.bus.publish(outcomes.audit(draft, verdict, "output", self.book.versions(), ["answer"]),
                                   self.bus.topics.audit)
            log.info("guardrail %s by rule %s (classes: %s)", verdict.action, decision.rule,
                     ",".join(decision.classes))  # never the text
            if verdict.blocked_by is not None:
                return outcomes.refused(answer, verdict.blocked_by)
            fmt = draft.response_format  # structured output: a redaction that breaks the JSON is no answer in it
            if fmt is not None and structured.mismatch(verdict.text, fmt) is not None:
                return outcomes.refused(answer, verdict.hits[0].rule)
            note = "Guardrail: redacted " + ", ".join(f"{c['class']} ({c['rule']})" for c in verdict.changes) + "."
            return answer.model_copy(update={"content": verdict.text, "reasoning": _with_line(answer.reasoning, note)})

        answer, fresh = await self.outcomes.once(draft.response_id, decide, message=draft)
        answer = with_upstream(answer, draft.cost)  # the critic's or the merger's run, on the overhead ledger
        await self.bus.publish(answer, self.bus.topics.answers)
        if draft.ingest is not None and answer.error is None and answer.finish_reason != "content_filter":
            ingest = draft.ingest.model_copy(update={"answer": answer.content})
            await self.bus.publish(ingest, self.bus.topics.ingest)
        event = "blocked" if answer.finish_reason == "content_filter" else (
            "redacted" if answer.content != draft.answer.content else "passed")
        if fresh:
            await self.bus.publish(Progress(**draft.child_fields(), stage="guardrail", event=event,
                                            detail=decision.rule if decision else ""), self.bus.topics.progress)


def _with_line(reasoning: str, line: str) -> str:
    return f"{reasoning.rstrip()}\n\n{line}" if reasoning.strip() else line


def build(res: Resources) -> Guardrail:
    settings: GuardrailSettings = res.settings
    store = QuarantineStore(res.redis, settings.topic_namespace, settings.guardrail_retention_s)
    return Guardrail(settings, res.bus, GuardrailBook.from_settings(settings), res.outcomes(), store)


STAGE = Stage(
    name="guardrail",
    settings=GuardrailSettings,
    build=build,
    summary="Answers of tenants with output guardrails -> the tenant's rules (patterns, PII detectors, blocked "
            "topics) -> the answer as it was, redacted, or a refusal (content_filter); a block quarantines the "
            "answer, every decision is an audit record; a blocked answer is not learned.",
    consumes=(Consumes("guard", Draft, "handle"),),
    publishes=("answers", "ingest", "progress", "audit"),
    needs=("redis",),
    memo=MemoPolicy("guardrail:answer", Answer, ttl="answer_ttl_s"),  # no cancel policy: a check is local
    notes=Notes(keeps="Redis `guardrail:answer:<ns>:<response_id>` (answer memo), "
                    "`guardrail:decision:<ns>:<tenant>:<response_id>` and "
                    "`guardrail:index:<ns>:<tenant>:<kind>` (quarantine and journal, "
                    "`MOE_GUARDRAIL_RETENTION_S`)",
                dedupe="`Memo` keyed by `response_id`; the decision `SET NX` before the answer",
                redelivery="republishes the stored answer (and ingest event, unless blocked); the"
                           " audit event carries a deterministic `event_id`"),
)


def create_app(settings: GuardrailSettings | None = None, **overrides: Any) -> FastAPI:
    return create_stage_app(STAGE, settings, **overrides)
