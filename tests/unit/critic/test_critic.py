"""critic: reading the verdict, the answer the user gets, and the handler on the in-memory broker."""

from __future__ import annotations

import pytest
from faststream.kafka import TestKafkaBroker

from critic import core
from critic.app import create_app
from critic.settings import CriticSettings
from moe_core.contracts import Answer, Cancel, Draft, IngestEvent, Progress, Usage, deadline_in
from moe_core.runtime.bus import Bus
from tests.support.in_memory import scripted_inference
from tests.support.scripted_core import prompt_tokens
from tests.support.scripted_llm import create_app as scripted_llm

pytestmark = pytest.mark.unit
DRAFT_TEXT = "Take 4 g of paracetamol every hour."


@pytest.mark.parametrize("reply", ["CONFIRMED", "  **CONFIRMED**\n", "confirmed.", "CONFIRMED. The answer is right."])
def test_confirmations(reply: str) -> None:
    assert core.verdict(reply) == core.Verdict("right")


@pytest.mark.parametrize(("reply", "corrected"), [
    ("Corrected answer: Take at most 4 g a day.", "Take at most 4 g a day."),
    ("**Corrected:** Take at most 4 g a day.", "Take at most 4 g a day."),
    ("Confirmed cases of measles rose in 2024.", "Confirmed cases of measles rose in 2024."),
    ("Take at most 4 g a day.\nCONFIRMED", "Take at most 4 g a day.\nCONFIRMED"),
])
def test_corrections(reply: str, corrected: str) -> None:
    assert core.verdict(reply) == core.Verdict("wrong", corrected)  # a correction without a label is "wrong"


def test_an_empty_reply_is_no_verdict() -> None:
    assert core.verdict("  \n") is None
    assert core.verdict("Corrected answer:   ") is None


@pytest.mark.parametrize("reply", [
    "Question: Is Vexotrin safe for a sepsis patient?\n\nAnswer to review:\nNo, no answer possible",
    "WRONG: Question: Is it safe?\nAnswer to review:\nYes.",
    "UNSAFE:\nThe answer is wrong.\n\nAnswer to review:\nTake it.",
])
def test_a_reply_that_echoes_the_review_prompt_is_no_verdict(reply: str) -> None:
    """A hospital's trial: the small model's "correction" was its own prompt's scaffolding, and it replaced the
    answer; such a reply is no verdict (the draft goes out marked as not double-checked)."""
    assert core.verdict(reply) is None
    assert core.verdict("WRONG: Ask the question again tomorrow.") == core.Verdict("wrong", "Ask the question again "
                                                                                           "tomorrow.")


def _draft(rid: str, mode: str = "moe-orchestrator", deadline_s: float = 30) -> Draft:
    fields = {"response_id": rid, "tenant_id": "t", "deadline_at": deadline_in(deadline_s)}
    answer = Answer(**fields, mode=mode, content=DRAFT_TEXT, usage=Usage(prompt_tokens=10, completion_tokens=5),
                    model_calls=3, experts_used=["medical_consult"], reasoning="Two sources agree.",
                    question="How much paracetamol?")
    ingest = IngestEvent(**fields, question="How much paracetamol?", answer=DRAFT_TEXT, mode=mode,
                         knowledge_type="medical", source_expert="medical_consult", source_model="expert-model")
    return Draft(**fields, question="How much paracetamol?", categories=["medical_consult", "general"],
                 answer=answer, ingest=ingest)


def test_review_prompt_names_the_domain_and_the_draft() -> None:
    system, user = core.review_messages(_draft("r"))
    assert "medical question" in system["content"] and "CONFIRMED" in system["content"]
    assert DRAFT_TEXT in user["content"] and "How much paracetamol?" in user["content"]


def test_a_correction_is_shaped_for_the_mode_and_usage_is_summed() -> None:
    draft = _draft("r", mode="moe-orchestrator-concise")
    long = "Take at most 4 g a day. " * 60
    answer = core.reviewed(draft, core.Verdict("wrong", long), Usage(prompt_tokens=7, completion_tokens=3))
    assert len(answer.content.split()) == 120
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.model_calls) == (17, 8, 4)
    assert answer.reasoning == "Two sources agree.\n\nCritic: corrected the draft (wrong)."


def _app(namespace: str, redis, rules: list[dict]):
    llm = scripted_llm({"models": ["judge-model", "critic-model"], "rules": rules})
    settings = CriticSettings(
        topic_namespace=namespace,
        inference_servers='[{"name":"s","url":"http://s","models":["judge-model","critic-model"],"max_retries":0}]',
        model_assignments='{"judge": ["judge-model"], "critic": ["critic-model"]}')
    inference = scripted_inference(settings, llm)
    bus = Bus(settings)
    create_app(settings, bus=bus, inference=inference, redis=redis, manage_broker=False)
    out: dict[str, list] = {"answers": [], "ingest": [], "progress": []}
    bus.broker.subscriber(bus.topics.answers)(lambda m: out["answers"].append(Answer.model_validate(m)))
    bus.broker.subscriber(bus.topics.ingest)(lambda m: out["ingest"].append(IngestEvent.model_validate(m)))
    bus.broker.subscriber(bus.topics.progress)(lambda m: out["progress"].append(Progress.model_validate(m)))
    return bus, llm, out


@pytest.mark.infra  # real stores
async def test_confirmed_draft_reaches_the_user_unchanged(redis, namespace: str) -> None:
    bus, llm, out = _app(namespace, redis, [{"model": "critic-model", "reply": "CONFIRMED"}])
    draft = _draft(f"r-{namespace}")
    async with TestKafkaBroker(bus.broker):
        await bus.publish(draft, bus.topics.drafts)
    [answer] = out["answers"]
    assert answer.content == DRAFT_TEXT and answer.error is None
    [call] = llm.state.scripted.get_calls()
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (10 + prompt_tokens(call["messages"]), 6)
    assert answer.model_calls == 4
    assert [(i.answer, i.knowledge_type) for i in out["ingest"]] == [(DRAFT_TEXT, "medical")]
    assert [p.event for p in out["progress"]] == ["reviewing", "confirmed"]


@pytest.mark.infra  # real stores
async def test_corrected_answer_is_what_the_user_gets_once(redis, namespace: str) -> None:
    bus, llm, out = _app(namespace, redis, [
        {"model": "critic-model", "reply": "Corrected answer: Never take more than 4 g of paracetamol a day."}])
    draft = _draft(f"r-{namespace}")
    async with TestKafkaBroker(bus.broker):
        await bus.publish(draft, bus.topics.drafts)
        await bus.publish(draft, bus.topics.drafts)  # redelivery: the same answer, no second review
    assert [a.content for a in out["answers"]] == ["Never take more than 4 g of paracetamol a day."] * 2
    assert len(llm.state.scripted.get_calls()) == 1
    call = llm.state.scripted.get_calls()[0]
    assert call["model"] == "critic-model" and DRAFT_TEXT in call["messages"][1]["content"]
    assert out["answers"][0].reasoning.endswith("Critic: corrected the draft (wrong).")
    assert out["answers"][0].usage.completion_tokens == 5 + 12  # the reply has 12 words
    assert [i.answer for i in out["ingest"]] == ["Never take more than 4 g of paracetamol a day."] * 2


@pytest.mark.infra  # real stores
async def test_critic_failure_sends_the_draft_marked_unreviewed(redis, namespace: str) -> None:
    bus, _, out = _app(namespace, redis, [{"model": "critic-model", "status": 500}])
    async with TestKafkaBroker(bus.broker):
        await bus.publish(_draft(f"r-{namespace}"), bus.topics.drafts)
    assert out["answers"][0].content == DRAFT_TEXT + core.UNREVIEWED_NOTE
    assert out["progress"][-1].event == "unreviewed"


@pytest.mark.infra  # real stores
async def test_the_judge_model_reviews_when_no_critic_is_assigned(redis, namespace: str) -> None:
    llm = scripted_llm({"models": ["judge-model"], "rules": [{"reply": "CONFIRMED"}]})
    settings = CriticSettings(topic_namespace=namespace,
                              inference_servers='[{"name":"s","url":"http://s","models":["judge-model"]}]',
                              model_assignments='{"judge": ["judge-model"]}')
    inference = scripted_inference(settings, llm)
    app = create_app(settings, bus=Bus(settings), inference=inference, redis=redis, manage_broker=False)
    assert [str(r) for r in app.state.critic.refs()] == ["judge-model"]


@pytest.mark.infra  # real stores
async def test_a_cancelled_request_is_not_reviewed(redis, namespace: str) -> None:
    bus, llm, out = _app(namespace, redis, [{"model": "critic-model", "reply": "CONFIRMED"}])
    draft = _draft(f"r-{namespace}")
    async with TestKafkaBroker(bus.broker):
        await bus.publish(Cancel(**draft.child_fields()), bus.topics.cancel)
        await bus.publish(draft, bus.topics.drafts)
    assert llm.state.scripted.get_calls() == []
    assert out["answers"][0].error is not None and out["answers"][0].error.code == "cancelled"
    assert out["ingest"] == []
