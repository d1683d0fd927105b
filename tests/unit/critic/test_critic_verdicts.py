"""critic: WRONG/UNSAFE verdicts and the flag they publish (the Feedback a 1-star rating is, source critic),
on the in-memory broker; a right verdict publishes none; a redelivery republishes the same flag."""

from __future__ import annotations

import pytest
from faststream.kafka import TestKafkaBroker

from critic import core, flags
from critic.app import create_app
from critic.settings import CriticSettings
from moe_core.contracts import Answer, Draft, Feedback, ModelUse, Progress, Source, deadline_in
from moe_core.runtime.bus import Bus
from tests.support.in_memory import scripted_inference
from tests.support.scripted_llm import create_app as scripted_llm

pytestmark = pytest.mark.unit
SOURCES = [Source(kind="expert", ref="medical_consult:expert-model@s"), Source(kind="graph", ref="rel-1", title="A"),
           Source(kind="web", ref="web:1", url="https://x.example"), Source(kind="graph", ref="rel-2")]


@pytest.mark.parametrize(("reply", "kind", "corrected"), [
    ("WRONG: Take at most 4 g a day.", "wrong", "Take at most 4 g a day."),
    ("**UNSAFE:** Never combine them; see a doctor.", "unsafe", "Never combine them; see a doctor."),
    ("Unsafe: Corrected answer: Ask a pharmacist.", "unsafe", "Ask a pharmacist."),
    ("Wrong answer aside, tides are lunar.", "wrong", "Wrong answer aside, tides are lunar."),  # no label
])
def test_fault_labels(reply: str, kind: str, corrected: str) -> None:
    assert core.verdict(reply) == core.Verdict(kind, corrected)  # type: ignore[arg-type]
    assert core.verdict("UNSAFE:   ") is None


def _draft(rid: str, *, cache_key: str | None = "ck-1", sources: list[Source] = SOURCES, **kw: object) -> Draft:
    fields = {"response_id": rid, "tenant_id": "t", "deadline_at": deadline_in(30), **kw}
    answer = Answer(**fields, mode="moe-orchestrator", content="Take 4 g every hour.", sources=sources,
                    cache_key=cache_key, question="How much paracetamol?",
                    models_used=[ModelUse(model="expert-model", category="medical_consult")])
    return Draft(**fields, question="How much paracetamol?", categories=["medical_consult"], answer=answer)


def test_the_flag_of_a_wrong_verdict_is_a_one_star_rating_that_names_no_model() -> None:
    flag = flags.flag_for(_draft("r"), core.Verdict("unsafe", "No."))
    assert flag is not None
    assert (flag.rating, flag.source, flag.cache_key, flag.graph_refs, flag.models_used, flag.approved) == (
        1, "critic", "ck-1", ["rel-1", "rel-2"], [], False)
    assert (flag.comment, flag.question, flag.tenant_id) == ("critic verdict: unsafe", "How much paracetamol?", "t")
    assert flag.remaining_seconds() > 600  # the learning consumers are not bound by the request's deadline
    assert flags.flag_for(_draft("r"), core.Verdict("right")) is None
    assert flags.flag_for(_draft("r", replay_of="r0"), core.Verdict("wrong", "No.")) is None
    assert flags.flag_for(_draft("r", cache_key=None, sources=[]), core.Verdict("wrong", "No.")) is None


def _app(namespace: str, redis, reply: str):
    llm = scripted_llm({"models": ["critic-model"], "rules": [{"model": "critic-model", "reply": reply}]})
    settings = CriticSettings(topic_namespace=namespace, model_assignments='{"critic": ["critic-model"]}',
                              inference_servers='[{"name":"s","url":"http://s","models":["critic-model"]}]')
    inference = scripted_inference(settings, llm)
    bus = Bus(settings)
    create_app(settings, bus=bus, inference=inference, redis=redis, manage_broker=False)
    order: list[tuple[str, object]] = []
    bus.broker.subscriber(bus.topics.feedback)(lambda m: order.append(("feedback", Feedback.model_validate(m))))
    bus.broker.subscriber(bus.topics.answers)(lambda m: order.append(("answer", Answer.model_validate(m))))
    bus.broker.subscriber(bus.topics.progress)(lambda m: order.append(("progress", Progress.model_validate(m))))
    return bus, llm, order


@pytest.mark.infra  # real stores
async def test_a_wrong_verdict_publishes_its_flag_before_the_answer_and_once_per_review(redis, namespace: str) -> None:
    bus, llm, order = _app(namespace, redis, "WRONG: Never take more than 4 g a day.")
    draft = _draft(f"r-{namespace}")
    async with TestKafkaBroker(bus.broker):
        await bus.publish(draft, bus.topics.drafts)
        await bus.publish(draft, bus.topics.drafts)  # redelivery: the same flag again, no second review
    assert len(llm.state.scripted.get_calls()) == 1
    kinds = [k for k, _ in order if k != "progress"]
    assert kinds == ["feedback", "answer", "feedback", "answer"]
    first, second = (m for k, m in order if k == "feedback")
    assert first == second and isinstance(first, Feedback)  # same created_at: graph-ingest counts it once
    assert first.versions is not None and "critic.review" in first.versions.prompts  # the first run's prompts
    assert (first.source, first.rating, first.graph_refs) == ("critic", 1, ["rel-1", "rel-2"])
    answer = next(m for k, m in order if k == "answer")
    assert isinstance(answer, Answer) and answer.content == "Never take more than 4 g a day."
    assert [(m.event, m.detail) for k, m in order if k == "progress" and isinstance(m, Progress)][-1] == (
        "corrected", "wrong")


@pytest.mark.infra  # real stores
async def test_a_right_verdict_publishes_no_flag(redis, namespace: str) -> None:
    bus, _, order = _app(namespace, redis, "CONFIRMED")
    async with TestKafkaBroker(bus.broker):
        await bus.publish(_draft(f"r-{namespace}"), bus.topics.drafts)
    assert [k for k, _ in order if k != "progress"] == ["answer"]
