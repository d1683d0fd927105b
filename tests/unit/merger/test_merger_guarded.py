"""The merger and a tenant with output guardrails (in-memory broker, real Redis, scripted models): the answer
goes to the guardrail stage (topic guard) instead of `answers`, with its ingest event inside, and nothing of it
is streamed — neither the judge's text nor the thinking step; a redelivery sends the same draft again."""

from __future__ import annotations

from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker

from moe_core.contracts import Draft
from tests.unit.merger.test_merger_handler import Harness

pytestmark = pytest.mark.infra  # real Redis
RULES = "version: 1\ntenants:\n  t:\n    output:\n      - {id: no-codename, pattern: bluebird}\n"


async def test_a_guarded_tenants_answer_goes_to_the_guardrail_unstreamed(redis: Any, namespace: str) -> None:
    h = Harness(namespace, redis, [{"model": "think-model", "reply": "Check the tides."},
                                   {"model": "judge-model", "reply": "High tide at noon."}], guardrails=RULES)
    guarded: list[Draft] = []
    h.bus.broker.subscriber(h.bus.topics.guard)(lambda m: guarded.append(Draft.model_validate(m)))
    async with TestKafkaBroker(h.bus.broker):
        await h.send(h.plan(("t1", "expert", "general"), ("t2", "expert", "science")),
                     h.result("t1", "general", "Noon."), h.result("t2", "science", "Moon."))
        await h.send(h.result("t2", "science", "Moon."))  # redelivery: the same draft, no new model call
    assert h.out["answers"] == [] and h.out["ingest"] == [] and h.out["drafts"] == []
    assert h.out["deltas"] == [], "nothing is streamed before the guardrail has checked the answer"
    assert len(guarded) == 2 and len(h.calls()) == 2
    # stamped by the run that publishes (a redelivery stamps its own run: its versions, its cost)
    a, b = (d.model_dump(exclude={"trace", "started_at", "versions", "cost"}) for d in guarded)
    assert a == b, {k: (a[k], b[k]) for k in a if a[k] != b[k]}
    draft = guarded[0]
    assert (draft.answer.content, draft.categories, draft.guarded) == ("High tide at noon.", [], True)
    assert draft.ingest is not None and draft.ingest.answer == "High tide at noon."


async def test_an_unguarded_tenant_streams_and_answers_as_before(redis: Any, namespace: str) -> None:
    h = Harness(namespace, redis, [{"model": "think-model", "reply": "Check the tides."},
                                   {"model": "judge-model", "reply": "High tide at noon."}],
                guardrails=RULES.replace("  t:", "  someone-else:"))
    async with TestKafkaBroker(h.bus.broker):
        await h.send(h.plan(("t1", "expert", "general"), ("t2", "expert", "science")),
                     h.result("t1", "general", "Noon."), h.result("t2", "science", "Moon."))
    assert [a.content for a in h.out["answers"]] == ["High tide at noon."]
    assert h.streamed("content") == "High tide at noon." and h.streamed("reasoning") == "Check the tides."
