"""Structured output end to end (openai SDK, the real fleet, scripted models): `response_format` json_schema (the
SDK's parse() with a pydantic model) and json_object on chat completions, `text.format` on the Responses API. The
call that writes the final answer (a direct task's one expert call, else the judge) is constrained to the format
and the experts feeding the judge answer in prose; an answer that does not match is a 422, one cut at max_tokens
comes as produced; cached prose never answers a structured request, nor cached JSON a prose one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from pydantic import BaseModel
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from moe_core.contracts import ChatMessage, ChatRequest, GenerationParams, ResponseFormat, deadline_in
from moe_core.llm.exact_cache import ExactAnswers, cache_scope
from tests.conftest import Scripted
from tests.e2e.helpers import calls_for, marker, plan_reply
from tests.support.fleet import Fleet
from tests.support.moe_fields import moe
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e


class City(BaseModel):
    name: str
    country: str
    population_millions: float


PARIS = {"name": "Paris", "country": "France", "population_millions": 2.1}


@pytest.fixture
def client(base_url: str, api_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def store(infra: dict[str, str]) -> Iterator[Redis]:
    client = Redis.from_url(infra["redis"], decode_responses=True)
    yield client
    client.close()



def _format(call: dict[str, Any]) -> dict[str, Any] | None:
    return call["body"].get("response_format")


def _client_schema(call: dict[str, Any]) -> dict[str, Any] | None:
    """The client's format as the model call got it (the planner's own `plan` schema is not the client's)."""
    fmt = _format(call)
    return fmt if fmt is not None and fmt["json_schema"]["name"] != "plan" else None


@pytest.fixture
def trivial_route(fleet: Fleet) -> Iterator[None]:
    """The planner with its trivial-question route on (the e2e fleet runs without it: its journeys script the plan):
    a short question is one direct expert call, no planner model, no judge. Restored afterwards."""
    planner = fleet["planner"]

    def restart(skip: str) -> None:
        planner.stop()
        planner.env["MOE_PLANNER_SKIP_TRIVIAL"] = skip
        planner.start()
        planner.wait_ready()

    restart("true")
    try:
        yield
    finally:
        restart("false")


def test_parse_on_a_full_pipeline_question_constrains_the_judge_not_the_experts(
        client: openai.OpenAI, scripted: Scripted) -> None:
    m = marker()
    scripted.script([
        {"model": "planner-model", "contains": m,
         "reply": plan_reply(("general", f"Name the capital {m}"), ("science", f"Give its population {m}"))},
        {"model": "expert-model", "contains": f"Name the capital {m}", "reply": "Paris.\nCONFIDENCE: high"},
        {"model": "expert-model", "contains": f"population {m}", "reply": "About 2.1 million.\nCONFIDENCE: high"},
        {"model": "judge-model", "contains": m, "reply": json.dumps(PARIS)},
    ])
    response = client.chat.completions.parse(
        model="moe-orchestrator", response_format=City,
        messages=[{"role": "user", "content": f"Which city is the capital of France, and how many live there? {m}"}])
    message = response.choices[0].message
    assert message.parsed == City(**PARIS)
    assert json.loads(message.content or "") == PARIS  # exactly the JSON: no plan, no gaps note
    assert response.choices[0].finish_reason == "stop"
    calls = calls_for(scripted.calls(), m)
    experts = [c for c in calls if c["model"] == "expert-model"]
    judge = [c for c in calls if c["model"] == "judge-model"][-1]  # after the thinking step
    assert len(experts) == 2 and all(_format(c) is None for c in experts)  # prose for the judge
    schema = _client_schema(judge)
    assert schema is not None and schema["json_schema"]["name"] == "City"
    assert schema["json_schema"]["schema"]["required"] == ["name", "country", "population_millions"]
    assert schema["json_schema"]["strict"] is True  # as the SDK sent it
    assert all(_client_schema(c) is None for c in calls if c is not judge)  # the thinking step: prose too


def test_a_single_confident_expert_answer_goes_through_the_judge(client: openai.OpenAI, scripted: Scripted) -> None:
    """The fast path (one high-confidence answer returned as it is) would return the expert's prose."""
    m = marker()
    scripted.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Name the capital {m}"))},
        {"model": "expert-model", "contains": m, "reply": "Paris, with about 2.1 million people.\nCONFIDENCE: high"},
        {"model": "judge-model", "contains": m, "reply": json.dumps(PARIS)},
    ])
    response = client.chat.completions.parse(
        model="moe-orchestrator", response_format=City,
        messages=[{"role": "user", "content": f"Which city is the capital of France, and how many live there? {m}"}])
    assert response.choices[0].message.parsed == City(**PARIS)
    calls = calls_for(scripted.calls(), m)
    assert [c["model"] for c in calls] == ["planner-model", "expert-model", "judge-model"]
    assert _format(calls[1]) is None and _client_schema(calls[2]) is not None


@pytest.mark.usefixtures("trivial_route")
def test_parse_on_a_trivial_question_constrains_its_one_direct_call(client: openai.OpenAI, scripted: Scripted) -> None:
    m = marker()
    scripted.script([{"model": "expert-model", "contains": m, "reply": json.dumps(PARIS)}])
    response = client.chat.completions.parse(
        model="moe-orchestrator", response_format=City,
        messages=[{"role": "user", "content": f"Capital of France? {m}"}])
    assert response.choices[0].message.parsed == City(**PARIS)
    calls = calls_for(scripted.calls(), m)
    assert [c["model"] for c in calls] == ["expert-model"]  # no planner model, no judge: the direct path
    schema = _client_schema(calls[0])
    assert schema is not None and schema["json_schema"]["name"] == "City"

    # streamed: the expert streams its constrained answer to the client as it writes it
    n = marker()
    scripted.script([{"model": "expert-model", "contains": n, "reply": json.dumps(PARIS)}])
    with client.chat.completions.stream(model="moe-orchestrator", response_format=City,
                                        messages=[{"role": "user", "content": f"Capital of France? {n}"}]) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.parsed == City(**PARIS)
    streamed = calls_for(scripted.calls(), n)
    assert [c["model"] for c in streamed] == ["expert-model"] and streamed[0]["stream"] is True
    assert _client_schema(streamed[0]) is not None


def test_json_object_and_parse_on_the_responses_api(client: openai.OpenAI, scripted: Scripted) -> None:
    m = marker()
    scripted.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Name the capital {m}"))},
        {"model": "expert-model", "contains": m, "reply": "Paris.\nCONFIDENCE: high"},
        {"model": "judge-model", "contains": m, "reply": '{"capital": "Paris"}'},
    ])
    response = client.responses.create(model="moe-orchestrator", input=f"The capital of France, as JSON? {m}",
                                       text={"format": {"type": "json_object"}})
    assert response.status == "completed"
    assert json.loads(response.output_text) == {"capital": "Paris"}
    assert response.text is not None and response.text.format is not None
    assert response.text.format.type == "json_object"
    judge = [c for c in calls_for(scripted.calls(), m) if c["model"] == "judge-model"][-1]
    assert _client_schema(judge) == {"type": "json_schema", "json_schema": {"name": "output",
                                                                            "schema": {"type": "object"}}}

    n = marker()  # the SDK's responses.parse with a pydantic model: text.format json_schema
    scripted.script(_one_expert_then_judge(n, json.dumps(PARIS)))
    parsed = client.responses.parse(model="moe-orchestrator", input=f"The capital of France? {n}", text_format=City)
    assert parsed.output_parsed == City(**PARIS)
    assert parsed.text is not None and parsed.text.format is not None and parsed.text.format.type == "json_schema"
    judge = [c for c in calls_for(scripted.calls(), n) if c["model"] == "judge-model"][-1]
    assert (_client_schema(judge) or {})["json_schema"]["name"] == "City"


def _one_expert_then_judge(m: str, judged: str) -> list[dict[str, Any]]:
    return [
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Name the capital {m}"))},
        {"model": "expert-model", "contains": m, "reply": "Paris.\nCONFIDENCE: high"},
        {"model": "judge-model", "contains": m, "reply": judged},
    ]


def test_an_answer_that_does_not_match_is_a_422_and_one_cut_at_max_tokens_comes_as_produced(
        client: openai.OpenAI, scripted: Scripted) -> None:
    prose, partial, whole = marker(), marker(), marker()
    scripted.script([*_one_expert_then_judge(prose, "The capital of France is Paris."),
                     *_one_expert_then_judge(partial, '{"name": "Paris", "country": "France"}'),
                     *_one_expert_then_judge(whole, json.dumps(PARIS))])
    with pytest.raises(openai.UnprocessableEntityError) as not_json:
        client.chat.completions.parse(model="moe-orchestrator", response_format=City,
                                      messages=[{"role": "user", "content": f"The capital of France? {prose}"}])
    error = not_json.value.body
    assert isinstance(error, dict) and error["code"] == "response_format_unmet"
    assert "not JSON" in error["message"]
    with pytest.raises(openai.UnprocessableEntityError) as no_population:  # JSON, but not the schema's
        client.chat.completions.parse(model="moe-orchestrator", response_format=City,
                                      messages=[{"role": "user", "content": f"Its country? {partial}"}])
    assert isinstance(no_population.value.body, dict)
    assert "population_millions" in no_population.value.body["message"]

    cut = client.chat.completions.create(  # cut at max_tokens: as produced, finish_reason length (as OpenAI)
        model="moe-orchestrator", response_format={"type": "json_object"}, max_tokens=3,
        messages=[{"role": "user", "content": f"The capital of France? {whole}"}])
    assert cut.choices[0].finish_reason == "length"
    assert cut.choices[0].message.content == '{"name": "Paris", "country":'

    streamed = client.chat.completions.create(  # a stream ends with the error event (the SDK raises it)
        model="moe-orchestrator", response_format={"type": "json_object"}, stream=True,
        messages=[{"role": "user", "content": f"The capital of France, streamed? {prose}"}])
    with pytest.raises(openai.APIError) as in_stream:
        list(streamed)
    assert "response_format" in str(in_stream.value)


class Dose(BaseModel):
    drug: str
    max_grams_per_day: float


def test_the_critic_replaces_structured_content_only_with_json_in_its_format(
        client: openai.OpenAI, scripted: Scripted) -> None:
    """The critic reviews a medical answer (as for prose); its prose correction would break the client's program, so
    the draft's JSON stays, flagged; a correction in the format replaces it."""
    prose_fix, json_fix = marker(), marker()
    draft = {"drug": "paracetamol", "max_grams_per_day": 12}
    scripted.script([
        *[rule for m in (prose_fix, json_fix) for rule in (
            {"model": "planner-model", "contains": m, "reply": plan_reply(("medical_consult", f"Paracetamol {m}"))},
            {"model": "expert-model", "contains": m, "reply": "Up to 4 g a day.\nCONFIDENCE: high"},
            {"model": "judge-model", "contains": m, "system_contains": "Merge the sources",
             "reply": json.dumps(draft)})],
        {"model": "judge-model", "contains": prose_fix, "system_contains": "You review",
         "reply": "WRONG: Never take more than 4 g of paracetamol a day."},
        {"model": "judge-model", "contains": json_fix, "system_contains": "You review",
         "reply": 'WRONG: {"drug": "paracetamol", "max_grams_per_day": 4}'},
    ])
    kept = client.chat.completions.parse(
        model="moe-orchestrator", response_format=Dose,
        messages=[{"role": "user", "content": f"How much paracetamol may an adult take a day? {prose_fix}"}])
    assert kept.choices[0].message.parsed == Dose(**draft)
    assert "flagged the draft (wrong)" in kept.choices[0].message.reasoning_content  # type: ignore[attr-defined]
    review = [c for c in calls_for(scripted.calls(), prose_fix) if "You review" in c["messages"][0]["content"]]
    assert len(review) == 1 and "same format" in review[0]["messages"][0]["content"]
    fixed = client.chat.completions.parse(
        model="moe-orchestrator", response_format=Dose,
        messages=[{"role": "user", "content": f"How much paracetamol may an adult take a day? {json_fix}"}])
    assert fixed.choices[0].message.parsed == Dose(drug="paracetamol", max_grams_per_day=4)


def _exact_key(namespace: str, question: str, fmt: ResponseFormat | None) -> str:
    request = ChatRequest(response_id="r", tenant_id="tenant-e2e", deadline_at=deadline_in(9), mode="moe-orchestrator",
                          messages=[ChatMessage(role="user", content=question)],
                          params=GenerationParams(response_format=fmt))
    return ExactAnswers(AsyncRedis(), namespace, 0).key(cache_scope(request) or "", question)


# answers long enough for the semantic cache (MOE_CACHE_MIN_ANSWER_CHARS, 150)
LYON = ("Lyon lies where the Rhone meets the Saone; it is the third largest city of France, known for its old town, "
        "its silk-weaving past and its cooking, about two hours from Paris by train.")
LYON_JSON = json.dumps({"name": "Lyon", "country": "France", "rivers": ["Rhone", "Saone"],
                        "known_for": ["its old town", "its silk-weaving past", "cooking"], "hours_from_paris": 2})
WATER = ("At sea level, at a pressure of one standard atmosphere (101.325 kPa), pure water boils at 100 degrees "
         "Celsius, or 212 degrees Fahrenheit; higher up, where the pressure is lower, it boils at less.")
WATER_JSON = json.dumps({"substance": "water", "boiling_point_celsius": 100, "boiling_point_fahrenheit": 212,
                         "pressure_kpa": 101.325, "note": "lower pressure, lower boiling point"})


def test_cached_prose_never_answers_a_structured_request_nor_cached_json_a_prose_one(
        client: openai.OpenAI, scripted: Scripted, fleet: Fleet, store: Redis) -> None:
    namespace = fleet["gateway"].env["MOE_TOPIC_NAMESPACE"]
    lyon, water = marker(), marker()
    scripted.script([
        {"model": "planner-model", "contains": lyon, "reply": plan_reply(("general", f"Describe the city {lyon}"))},
        {"model": "planner-model", "contains": water, "reply": plan_reply(("general", f"Give the figure {water}"))},
        {"model": "expert-model", "contains": lyon, "reply": f"{LYON}\nCONFIDENCE: high"},
        {"model": "judge-model", "contains": lyon, "reply": LYON_JSON},
        {"model": "expert-model", "contains": water, "reply": f"{WATER}\nCONFIDENCE: high"},
        {"model": "judge-model", "contains": water, "reply": WATER_JSON},
    ])

    def ask(question: str, structured: bool) -> Any:
        extra: dict[str, Any] = {"response_format": {"type": "json_object"}} if structured else {}
        return client.chat.completions.create(model="moe-orchestrator",
                                              messages=[{"role": "user", "content": question}], **extra)

    question = f"Tell me about the city of Lyon. {lyon}"  # prose first
    assert ask(question, structured=False).choices[0].message.content == LYON
    eventually(lambda: store.exists(_exact_key(namespace, question, None)))  # cached, for the gateway too
    assert moe(ask(question, structured=False))["cache_hit"] is True
    structured = ask(question, structured=True)
    assert moe(structured)["cache_hit"] is False
    assert structured.choices[0].message.content == LYON_JSON

    question = f"At what temperature does water boil at sea level? {water}"  # JSON first
    assert ask(question, structured=True).choices[0].message.content == WATER_JSON
    eventually(lambda: store.exists(_exact_key(namespace, question, ResponseFormat(type="json_object"))))
    again = ask(question, structured=True)  # a structured repeat is served from its own cache
    assert moe(again)["cache_hit"] is True and again.choices[0].message.content == WATER_JSON
    prose = ask(question, structured=False)
    assert moe(prose)["cache_hit"] is False and prose.choices[0].message.content == WATER
