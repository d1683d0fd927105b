"""The guardrail stage's handler on the in-memory broker with the real Redis: a block refuses, quarantines,
audits and learns nothing, once however often the draft is redelivered; a redaction cuts out the match,
journals it and learns what the user got; a tenant without rules passes unchanged."""

from __future__ import annotations

import json

import pytest
from faststream.kafka import TestKafkaBroker
from redis.asyncio import Redis

from guardrail.app import create_app
from guardrail.settings import GuardrailSettings
from moe_core.contracts import Answer, AuditEvent, Draft, IngestEvent, ResponseFormat, deadline_in
from moe_core.llm.guardrails.quarantine import QuarantineStore
from moe_core.runtime.bus import Bus

pytestmark = pytest.mark.unit
RULES = """
version: 1
tenants:
  acme:
    output:
      - {id: no-codename, pattern: "(?i)project\\\\s+bluebird", reason: an internal code name}
      - {id: no-iban, detector: iban, action: redact}
"""
IBAN = "DE89 3704 0044 0532 0130 00"


def _draft(rid: str, tenant: str, content: str) -> Draft:
    fields = {"response_id": rid, "tenant_id": tenant, "deadline_at": deadline_in(30)}
    answer = Answer(**fields, mode="moe-orchestrator", content=content, reasoning="Two sources agree.",
                    question="What is it?")
    ingest = IngestEvent(**fields, question="What is it?", answer=content)
    return Draft(**fields, question="What is it?", answer=answer, ingest=ingest, guarded=True)


def _app(namespace: str, redis: Redis) -> tuple[Bus, dict[str, list]]:
    settings = GuardrailSettings(topic_namespace=namespace, guardrails=RULES)
    bus = Bus(settings)
    create_app(settings, bus=bus, redis=redis, manage_broker=False)
    out: dict[str, list] = {"answers": [], "ingest": [], "audit": []}
    bus.broker.subscriber(bus.topics.answers)(lambda m: out["answers"].append(Answer.model_validate(m)))
    bus.broker.subscriber(bus.topics.ingest)(lambda m: out["ingest"].append(IngestEvent.model_validate(m)))
    bus.broker.subscriber(bus.topics.audit)(lambda m: out["audit"].append(AuditEvent.model_validate(m)))
    return bus, out


@pytest.mark.infra  # real Redis
async def test_a_block_refuses_quarantines_audits_and_learns_nothing_once(redis: Redis, namespace: str) -> None:
    bus, out = _app(namespace, redis)
    rid = f"r-{namespace}"
    draft = _draft(rid, "acme", f"Project Bluebird starts in May; pay to {IBAN}.")
    async with TestKafkaBroker(bus.broker):
        await bus.publish(draft, bus.topics.guard)
        await bus.publish(draft, bus.topics.guard)  # a redelivery
    assert [(a.finish_reason, a.content) for a in out["answers"]] == [
        ("content_filter", "This answer was blocked by a guardrail (rule no-codename): an internal code name.")] * 2
    assert out["answers"][0].reasoning == "" and out["answers"][0].error is None
    assert out["ingest"] == [], "a blocked answer is not learned"
    assert {(e.action, e.subject, e.details["event_id"]) for e in out["audit"]} == {
        ("guardrail.block", "no-codename", out["audit"][0].details["event_id"])}
    assert out["audit"][0].details["classes"] == ["iban", "pattern"]
    assert "Bluebird" not in json.dumps([e.model_dump(mode="json") for e in out["audit"]])
    store = QuarantineStore(redis, namespace, 3600)
    [held] = await store.list(["acme"], "block")
    assert (held.response_id, held.rule, held.content) == (rid, "no-codename", draft.answer.content)
    assert await store.list(["other"], "block") == []


@pytest.mark.infra
async def test_a_redaction_cuts_out_the_match_journals_it_and_learns_what_the_user_got(
        redis: Redis, namespace: str) -> None:
    bus, out = _app(namespace, redis)
    async with TestKafkaBroker(bus.broker):
        await bus.publish(_draft(f"r-{namespace}", "acme", f"Pay to {IBAN} by Friday."), bus.topics.guard)
    [answer] = out["answers"]
    assert (answer.content, answer.finish_reason) == ("Pay to [REDACTED:iban] by Friday.", "stop")
    assert answer.reasoning.endswith("Guardrail: redacted iban (no-iban).")
    assert [i.answer for i in out["ingest"]] == ["Pay to [REDACTED:iban] by Friday."]
    [entry] = await QuarantineStore(redis, namespace, 3600).list(["acme"], "redact")
    assert entry.rule == "no-iban" and entry.content == "" and entry.hits[0]["count"] == 1
    assert [e.action for e in out["audit"]] == ["guardrail.redact"]


@pytest.mark.infra
async def test_a_tenant_without_rules_passes_unchanged(redis: Redis, namespace: str) -> None:
    bus, out = _app(namespace, redis)
    async with TestKafkaBroker(bus.broker):
        await bus.publish(_draft(f"r-{namespace}", "other", "Project Bluebird starts in May."), bus.topics.guard)
    assert [a.content for a in out["answers"]] == ["Project Bluebird starts in May."]
    assert [i.answer for i in out["ingest"]] == ["Project Bluebird starts in May."]
    assert out["audit"] == []


@pytest.mark.infra
async def test_a_structured_answers_redaction_stands_while_it_matches_the_format_else_it_is_refused(
        redis: Redis, namespace: str) -> None:
    """Structured output (moe_core.llm.structured): a redaction inside a JSON string keeps the JSON; one that leaves no
    answer in the format (here an IBAN the schema wants as a pattern) refuses the answer (content_filter)."""
    bus, out = _app(namespace, redis)
    schema = {"type": "object", "properties": {"iban": {"type": "string", "pattern": "^[A-Z]{2}[0-9 ]+$"}}}
    fmt = ResponseFormat(type="json_schema", name="payment", json_schema=schema)
    fine = _draft(f"r1-{namespace}", "acme", json.dumps({"note": f"Pay to {IBAN}."}))
    broken = _draft(f"r2-{namespace}", "acme", json.dumps({"iban": IBAN}))
    async with TestKafkaBroker(bus.broker):
        await bus.publish(fine.model_copy(update={"response_format": ResponseFormat(type="json_object")}),
                          bus.topics.guard)
        await bus.publish(broken.model_copy(update={"response_format": fmt}), bus.topics.guard)
    kept, refused = out["answers"]
    assert json.loads(kept.content) == {"note": "Pay to [REDACTED:iban]."} and kept.finish_reason == "stop"
    assert refused.finish_reason == "content_filter" and IBAN not in refused.content
