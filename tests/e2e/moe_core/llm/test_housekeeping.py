"""Open WebUI's own housekeeping requests (its real templates, tests/data/openwebui_templates) through the
official openai SDK: one small-model call, no plan, no experts, nothing to learn from (no ingest, no cache),
still authenticated, metered and audited; a question that merely mentions a title takes the normal path."""

from __future__ import annotations

import json
import uuid

import openai
import pytest

from moe_core.contracts import Topics
from tests.conftest import Scripted
from tests.e2e.helpers import expected_usage, plan_reply
from tests.support.fleet import Fleet
from tests.support.moe_fields import moe
from tests.support.openwebui import request_messages
from tests.support.topic_reader import TopicReader

pytestmark = pytest.mark.e2e
TITLE = json.dumps({"title": "Sourdough Baking"})


@pytest.fixture
def client(base_url: str, api_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=60)


def chat(marker: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"How do I bake sourdough bread? {marker}"},
            {"role": "assistant", "content": "Feed the starter, mix, fold, proof overnight, bake hot."}]


async def test_a_title_request_is_one_model_call_and_writes_nothing(
        client: openai.OpenAI, scripted: Scripted, fleet: Fleet, infra: dict[str, str]) -> None:
    m = f"M{uuid.uuid4().hex[:8]}"
    scripted.script([], default_reply=TITLE)
    messages = request_messages("title", chat(m))
    first = client.chat.completions.create(model="moe-orchestrator", messages=messages)  # type: ignore[arg-type]
    assert first.choices[0].message.content == TITLE
    calls = scripted.calls()
    assert len(calls) == 1  # no planner, no expert, no judge
    assert calls[0]["model"] == "expert-model"  # the housekeeping role: MODEL_ASSIGNMENTS default here
    assert calls[0]["messages"] == messages
    assert first.usage is not None  # metered: what the one call used
    assert (first.usage.prompt_tokens, first.usage.completion_tokens) == expected_usage(calls)

    again = client.chat.completions.create(model="moe-orchestrator", messages=messages)  # type: ignore[arg-type]
    assert again.choices[0].message.content == TITLE
    assert len(scripted.calls()) == 2  # not answered from any cache: nothing was cached

    rids = {r.id.removeprefix("chatcmpl-") for r in (first, again)}
    topics = Topics.for_namespace(fleet["gateway"].env["MOE_TOPIC_NAMESPACE"])
    ours = lambda body: body.get("response_id") in rids  # noqa: E731
    async with TopicReader(infra["kafka"], topics.audit, topics.answers, topics.requests, topics.plans,
                           topics.ingest) as reader:
        # (besides the egress decision of each: tests/e2e/moe_core/policy/test_data_class_egress.py)
        audited = await reader.wait(topics.audit, lambda b: ours(b) and not b["action"].startswith("egress."),
                                    count=2)
        answers = await reader.wait(topics.answers, ours, count=2)
        # a normal request afterwards: once its ingest event is out, the merger has seen ours long ago
        scripted.script([{"model": "planner-model", "reply": plan_reply(("general", "Explain proofing"))},
                         {"model": "expert-model", "reply": "Proofing lets dough rise.\nCONFIDENCE: high"}])
        barrier = client.chat.completions.create(
            model="moe-orchestrator", messages=[{"role": "user", "content": f"What is proofing? {m}"}])
        await reader.wait(topics.ingest, lambda b: b["response_id"] == barrier.id.removeprefix("chatcmpl-"))
        assert reader.on(topics.requests, ours) == [] and reader.on(topics.plans, ours) == []
        assert reader.on(topics.ingest, ours) == []
    assert {(e["actor"], e["action"], e["subject"]) for e in audited} == {("gateway", "housekeeping", "title")}
    assert all(a["cache_key"] is None and not a["cache_hit"] for a in answers)


def test_every_housekeeping_kind_takes_the_cheap_path(client: openai.OpenAI, scripted: Scripted) -> None:
    for name in ("tags", "follow_up", "query", "autocomplete"):
        scripted.script([], default_reply='{"tags": ["Cooking"]}')
        messages = request_messages(name, chat("x"), prompt="sourdough st")
        response = client.chat.completions.create(model="moe-orchestrator", messages=messages)  # type: ignore[arg-type]
        assert response.choices[0].message.content == '{"tags": ["Cooking"]}', name
        assert [c["model"] for c in scripted.calls()] == ["expert-model"], name


def test_a_streamed_title_request_streams_the_one_answer(client: openai.OpenAI, scripted: Scripted) -> None:
    scripted.script([], default_reply=TITLE)
    stream = client.chat.completions.create(model="moe-orchestrator", messages=request_messages(  # type: ignore[arg-type]
        "title", chat("y")), stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == TITLE and len(scripted.calls()) == 1


def test_a_question_that_mentions_a_title_takes_the_normal_path(client: openai.OpenAI, scripted: Scripted) -> None:
    m = f"M{uuid.uuid4().hex[:8]}"
    scripted.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("creative_writer", f"Title the essay {m}"))},
        {"model": "expert-model", "contains": m, "reply": "CORE_FINDING: Rising Slowly\nCONFIDENCE: high"},
    ])
    response = client.chat.completions.create(model="moe-orchestrator", messages=[{"role": "user", "content":
        f'Generate a concise title for my essay on sourdough, as JSON {{ "title": "..." }} {m}'}])
    assert response.choices[0].message.content
    models = [c["model"] for c in scripted.calls()]
    assert models[0] == "planner-model" and "expert-model" in models  # planned, then the expert
    assert "creative_writer" in moe(response)["experts_used"]


def test_housekeeping_is_still_authenticated(base_url: str, scripted: Scripted) -> None:
    scripted.script([], default_reply=TITLE)
    anonymous = openai.OpenAI(base_url=base_url, api_key="sk-not-a-key", max_retries=0, timeout=30)
    with pytest.raises(openai.AuthenticationError):
        anonymous.chat.completions.create(model="moe-orchestrator", messages=request_messages(  # type: ignore[arg-type]
            "title", chat("z")))
    assert scripted.calls() == []


def test_a_housekeeping_request_whose_model_call_fails_is_a_clear_503(
        client: openai.OpenAI, scripted: Scripted) -> None:
    """The planner's one model call fails (the inference server answers 500 on every try): the client gets a 503
    `housekeeping_failed` in the OpenAI envelope, streamed or not, never a 500 or a hang; nothing else is called."""
    scripted.script([{"model": "expert-model", "status": 500, "reply": "the server broke"}], default_reply=TITLE)
    messages = request_messages("title", chat(f"F{uuid.uuid4().hex[:8]}"))
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="moe-orchestrator", messages=messages)  # type: ignore[arg-type]
    assert err.value.status_code == 503
    body = err.value.body
    assert isinstance(body, dict) and body["type"] == "server_error" and body["code"] == "housekeeping_failed"
    assert "title" in body["message"] and "failed" in body["message"]
    assert {c["model"] for c in scripted.calls()} == {"expert-model"}  # no planner, no expert, no judge

    stream = client.chat.completions.create(model="moe-orchestrator", messages=messages,  # type: ignore[arg-type]
                                            stream=True)
    with pytest.raises(openai.APIError) as streamed:
        for _ in stream:
            pass
    assert isinstance(streamed.value.body, dict) and streamed.value.body["code"] == "housekeeping_failed"
    assert streamed.value.body["type"] == "server_error"  # the error frame in the stream, then [DONE]
