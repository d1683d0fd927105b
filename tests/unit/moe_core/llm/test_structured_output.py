"""Structured output (moe_core.llm.structured): the client's format read from both OpenAI shapes (and refused with the
field named), the check of an answer against it, the caches' scope, and what each stage does with it: only the
final call is constrained (a direct task's expert, else the judge), and nothing after it rewrites the JSON."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from critic import core as critic
from expert_worker import core as expert_core
from expert_worker.tiers import constrained
from gateway.protocols.openai.api import parse_request
from gateway.protocols.responses.api import parse_responses_request, response_body
from merger import core as merger_core
from merger import synthesis
from moe_core.contracts import (
    Answer,
    ChatMessage,
    ChatRequest,
    Draft,
    ErrorInfo,
    ExpertTask,
    GenerationParams,
    Plan,
    PlannedTask,
    ResponseFormat,
    TaskResult,
    Usage,
    deadline_in,
)
from moe_core.llm import structured
from moe_core.llm.exact_cache import cache_scope
from moe_core.llm.inference.protocols import openai_body
from moe_core.llm.modes import expert_suffix, get_mode
from moe_core.runtime.openai_error import OpenAIError

pytestmark = pytest.mark.unit
ENV: dict[str, Any] = {"response_id": "r1", "tenant_id": "t"}
CITY = {"type": "object", "properties": {"name": {"type": "string"}, "people": {"type": "integer"}},
        "required": ["name", "people"], "additionalProperties": False}
CITY_FORMAT = ResponseFormat(type="json_schema", name="city", json_schema=CITY, strict=True)


def test_text_or_none_is_prose_and_json_object_is_the_object_schema() -> None:
    assert structured.from_wire(None, "response_format") is None
    assert structured.from_wire({"type": "text"}, "response_format") is None
    fmt = structured.from_wire({"type": "json_object"}, "response_format")
    assert fmt == ResponseFormat(type="json_object", json_schema={"type": "object"})


def test_json_schema_in_the_chat_and_the_responses_shapes() -> None:
    chat = structured.from_wire({"type": "json_schema", "json_schema": {
        "name": "city", "schema": CITY, "strict": True, "description": "a city"}}, "response_format")
    responses = structured.from_wire({"type": "json_schema", "name": "city", "schema": CITY, "strict": True,
                                      "description": "a city"}, "text.format", nested=False)
    assert chat == responses == CITY_FORMAT.model_copy(update={"description": "a city"})
    assert structured.to_wire(responses, nested=False) == {"type": "json_schema", "name": "city", "schema": CITY,
                                                           "strict": True, "description": "a city"}


@pytest.mark.parametrize(("value", "param", "words"), [
    ({"type": "xml"}, "response_format", "got 'xml'"),
    ("json", "response_format", "must be an object"),
    ({"type": "json_schema"}, "response_format.json_schema", "is required"),
    ({"type": "json_schema", "json_schema": {"schema": CITY}}, "response_format.json_schema.name", "must match"),
    ({"type": "json_schema", "json_schema": {"name": "a b", "schema": CITY}}, "response_format.json_schema.name",
     "must match"),
    ({"type": "json_schema", "json_schema": {"name": "n" * 65, "schema": CITY}}, "response_format.json_schema.name",
     "must match"),
    ({"type": "json_schema", "json_schema": {"name": "city", "schema": [CITY]}}, "response_format.json_schema.schema",
     "JSON Schema object"),
    ({"type": "json_schema", "json_schema": {"name": "city", "schema": {"type": 5}}},
     "response_format.json_schema.schema", "not a valid JSON Schema"),
    ({"type": "json_schema", "json_schema": {"name": "city", "schema": {"description": "x" * 40_000}}},
     "response_format.json_schema.schema", "too large"),
    ({"type": "json_schema", "json_schema": {"name": "city", "schema": CITY, "strict": "yes"}},
     "response_format.json_schema.strict", "boolean"),
    ({"type": "json_schema", "json_schema": {"name": "city", "schema": {"$schema": []}}},
     "response_format.json_schema.schema", "not a valid JSON Schema"),
    ({"type": "json_schema", "json_schema": {"name": "city", "schema": {"$ref": "https://example.com/city.json"}}},
     "response_format.json_schema.schema", "points to nothing"),
    ({"type": "json_schema", "json_schema": {"name": "city", "schema": {"properties": {"a": {"$ref": "#/$defs/a"}}}}},
     "response_format.json_schema.schema", "points to nothing"),
    ({"type": "json_schema", "json_schema": {"name": "city", "schema": {"$ref": "#"}}},
     "response_format.json_schema.schema", "refers to itself without end"),
])
def test_a_bad_format_is_a_400_naming_its_field(value: Any, param: str, words: str) -> None:
    with pytest.raises(OpenAIError) as refused:
        structured.from_wire(value, "response_format")
    assert (refused.value.status, refused.value.param, refused.value.code) == (400, param, "invalid_value")
    assert words in refused.value.message


def test_the_request_models_carry_the_format_into_the_contract() -> None:
    chat = parse_request({"model": "moe-orchestrator", "messages": [{"role": "user", "content": "hi"}],
                          "response_format": {"type": "json_object"}})
    assert chat.params().response_format == ResponseFormat(type="json_object")
    plain = parse_request({"model": "moe-orchestrator", "messages": [{"role": "user", "content": "hi"}]})
    assert plain.params().response_format is None
    assert (chat.reasoning_format("think"), plain.reasoning_format("think")) == ("reasoning_content", "think")  # no
    # <think> block in front of the JSON
    with pytest.raises(OpenAIError) as refused:
        parse_request({"model": "moe-orchestrator", "messages": [{"role": "user", "content": "hi"}],
                       "response_format": {"type": "json_schema", "json_schema": {"name": "a b"}}})
    assert refused.value.param == "response_format.json_schema.name"
    body = parse_responses_request({"model": "moe-orchestrator", "input": "hi", "text": {"format": {
        "type": "json_schema", "name": "city", "schema": CITY, "strict": True}}})
    assert body.params().response_format == CITY_FORMAT
    echoed = response_body(body, "r1", 0)["text"]  # the response object says which format it answered in
    assert echoed == {"format": {"type": "json_schema", "name": "city", "schema": CITY, "strict": True}}


@pytest.mark.parametrize(("content", "fmt", "words"), [
    ('{"name": "Oslo", "people": 700000}', CITY_FORMAT, None),
    (' \n{"name": "Oslo", "people": 700000}\n', CITY_FORMAT, None),
    ('{"name": "Oslo"}', CITY_FORMAT, "'people' is a required property"),
    ('{"name": "Oslo", "people": "many"}', CITY_FORMAT, "at people"),
    ("Oslo has 700,000 people.", CITY_FORMAT, "not JSON"),
    ('```json\n{"name": "Oslo", "people": 1}\n```', CITY_FORMAT, "not JSON"),
    ('{"a": 1}', ResponseFormat(type="json_object"), None),
    ("[1, 2]", ResponseFormat(type="json_object"), "not an object"),
])
def test_an_answer_matches_its_format_or_says_where_not(content: str, fmt: ResponseFormat, words: str | None) -> None:
    reason = structured.mismatch(content, fmt)
    assert reason is None if words is None else words in (reason or "")


def _answer(**kw: Any) -> Answer:
    return Answer(**ENV, deadline_at=deadline_in(60), mode="moe-orchestrator", **kw)


def test_checked_turns_a_complete_mismatch_into_its_error_and_leaves_a_cut_answer_as_produced() -> None:
    bad = structured.checked(_answer(content="Oslo."), CITY_FORMAT)
    assert bad.content == "" and bad.error is not None and bad.error.code == "response_format_unmet"
    assert "Oslo." in bad.error.detail and "not JSON" in bad.error.message
    late = structured.checked(_answer(content="Oslo.\n\n(Incomplete: ...)", finish_reason="deadline"), CITY_FORMAT)
    assert late.error is not None and late.error.code == "deadline_exceeded" and late.content == ""
    untouched = [_answer(content='{"name": "Os', finish_reason="length"),  # as OpenAI: finish_reason length
                 _answer(content="Refused by rule x.", finish_reason="content_filter"),
                 _answer(content="", error=ErrorInfo(code="inference_unavailable", message="m")),
                 _answer(content="", tool_calls=[{"id": "c", "type": "function",
                                                  "function": {"name": "f", "arguments": "{}"}}]),
                 _answer(content='{"name": "Oslo", "people": 1}')]
    assert all(structured.checked(a, CITY_FORMAT) is a for a in untouched)
    assert structured.checked(_answer(content="prose"), None).content == "prose"


def _request(fmt: ResponseFormat | None) -> ChatRequest:
    return ChatRequest(**ENV, deadline_at=deadline_in(60), mode="moe-orchestrator",
                       messages=[ChatMessage(role="user", content="Tell me about Oslo")],
                       params=GenerationParams(response_format=fmt))


def test_the_caches_keep_structured_answers_apart_and_prose_keys_as_they_were() -> None:
    prose = cache_scope(_request(None))
    # the scope of a prose request, as before structured output existed (sha256 of tenant, mode, system prompt)
    assert prose == hashlib.sha256(b"t\x00moe-orchestrator\x00").hexdigest()[:24]
    scopes = {prose, cache_scope(_request(ResponseFormat(type="json_object"))), cache_scope(_request(CITY_FORMAT)),
              cache_scope(_request(CITY_FORMAT.model_copy(update={"name": "town"})))}
    assert len(scopes) == 4
    assert cache_scope(_request(CITY_FORMAT)) == cache_scope(_request(CITY_FORMAT.model_copy()))


def _plan(*tasks: PlannedTask, fmt: ResponseFormat | None = CITY_FORMAT, **kw: Any) -> Plan:
    return Plan(**ENV, deadline_at=deadline_in(60), mode="moe-orchestrator", question="Tell me about Oslo",
                tasks=list(tasks), params=GenerationParams(response_format=fmt), **kw)


def _result(content: str, **kw: Any) -> TaskResult:
    fields: dict[str, Any] = {"task_id": "t1", "category": "general", "confidence": "high", "model": "m", **kw}
    return TaskResult(**ENV, deadline_at=deadline_in(60), content=content, usage=Usage(), **fields)


def test_the_fast_path_is_a_direct_plans_only_for_a_structured_request() -> None:
    task = PlannedTask(task_id="t1", category="general", instruction="Oslo?")
    results = {"t1": _result("Oslo is the capital of Norway.")}
    mode = get_mode("moe-orchestrator")
    assert synthesis.fast_path(_plan(task, fmt=None), results, mode) is not None  # prose: as before
    assert synthesis.fast_path(_plan(task), results, mode) is None  # the judge writes the JSON
    direct = _plan(task, source="router", complexity="trivial")
    assert direct.is_direct() and synthesis.fast_path(direct, results, mode) is not None  # its call was constrained


def test_the_judge_is_told_the_schema_and_asked_for_no_tags_shape_or_insight() -> None:
    tasks = [PlannedTask(task_id="t1", category="general", instruction="a"),
             PlannedTask(task_id="t2", kind="graph", category="graph", instruction="b")]
    good = [_result("Oslo is the capital."), _result("Oslo -[CAPITAL_OF]-> Norway", kind="graph", task_id="t2",
                                                     category="graph")]
    system = synthesis.judge_messages(_plan(*tasks), good, "", get_mode("moe-orchestrator-report"))[0]["content"]
    assert json.dumps(CITY, separators=(",", ":")) in system and "'city'" in system
    assert "[REF:" not in system and "SYNTHESIS_INSIGHT" not in system
    prose = synthesis.judge_messages(_plan(*tasks, fmt=None), good, "", get_mode("moe-orchestrator"))[0]["content"]
    assert "[REF:" in prose and "JSON Schema" not in prose


def test_a_structured_request_at_its_deadline_gets_no_prose() -> None:
    task = PlannedTask(task_id="t1", category="general", instruction="Oslo?")
    results = {"t1": _result("Oslo is the capital of Norway.")}
    late = merger_core.partial_answer(_plan(task), results, ENV)
    assert late.content == "" and late.error is not None and late.error.code == "deadline_exceeded"
    assert merger_core.partial_answer(_plan(task, fmt=None), results, ENV).content.startswith("Oslo")


def _draft(content: str, fmt: ResponseFormat | None = CITY_FORMAT) -> Draft:
    return Draft(**ENV, deadline_at=deadline_in(60), question="Q", categories=["medical_consult"],
                 answer=_answer(content=content), response_format=fmt)


def test_the_critic_never_turns_structured_content_into_prose() -> None:
    draft = _draft('{"name": "Oslo", "people": 1}')
    fixed = critic.reviewed(draft, critic.Verdict("wrong", '{"name": "Oslo", "people": 700000}'), Usage())
    assert fixed.content == '{"name": "Oslo", "people": 700000}'  # a correction in the format replaces it
    kept = critic.reviewed(draft, critic.Verdict("wrong", "Oslo has 700,000 people."), Usage())
    assert kept.content == draft.answer.content and "flagged the draft (wrong)" in kept.reasoning
    unsafe = critic.reviewed(draft, critic.Verdict("unsafe", "Do not do this."), Usage())
    assert unsafe.finish_reason == "content_filter" and "withheld" in unsafe.content
    assert critic.unreviewed(draft, "the critic model failed").content == draft.answer.content
    assert critic.unreviewed(_draft("Prose.", None), "x").content.endswith(critic.UNREVIEWED_NOTE)
    assert "same format" in critic.review_messages(draft)[0]["content"]


def _task(direct: bool, fmt: ResponseFormat | None = CITY_FORMAT) -> ExpertTask:
    return ExpertTask(**ENV, deadline_at=deadline_in(60), task_id="t1", category="general", instruction="Oslo?",
                      question="Oslo?", direct=direct, mode="moe-orchestrator-code",
                      params=GenerationParams(response_format=fmt))


def test_only_a_direct_tasks_expert_call_is_constrained() -> None:
    assert constrained(_task(direct=True)) == {"json_schema": CITY, "schema_name": "city", "strict": True}
    assert constrained(_task(direct=False)) == {} and constrained(_task(direct=True, fmt=None)) == {}
    system = expert_core.expert_messages(_task(direct=True))[0]["content"]
    assert "JSON Schema 'city'" in system and expert_suffix("moe-orchestrator-code").strip() not in system  # the
    # format, not the mode's shape
    assert "JSON" not in expert_core.expert_messages(_task(direct=False))[0]["content"]  # prose for the judge


def test_the_model_call_carries_the_clients_strict_flag() -> None:
    body = openai_body({"messages": [], "json_schema": CITY, "schema_name": "city", "strict": True}, "m", False)
    assert body["response_format"] == {"type": "json_schema", "json_schema": {"name": "city", "schema": CITY,
                                                                              "strict": True}}
    planner = openai_body({"messages": [], "json_schema": CITY, "schema_name": "plan"}, "m", False)
    assert "strict" not in planner["response_format"]["json_schema"]  # the fleet's own schemas: as before


def test_a_runs_prompt_versions_name_the_template_not_the_clients_schema() -> None:
    """The record's prompt versions (moe_core.runtime.run_versions) are templates an auditor approves once: the client's
    schema is data, so two schemas give the same versions (else every new schema would read as a changed prompt)."""
    from moe_core.runtime.run_clock import RUN_PROMPTS
    from moe_core.runtime.run_versions import run_prompts

    seen = []
    for name in ("city", "town"):
        fmt = CITY_FORMAT.model_copy(update={"name": name, "json_schema": {**CITY, "title": name}})
        token = RUN_PROMPTS.set({})
        try:
            expert_core.expert_messages(_task(direct=True, fmt=fmt))
            tasks = [PlannedTask(task_id="t1", category="general", instruction="a")]
            synthesis.judge_messages(_plan(*tasks, fmt=fmt), [_result("Oslo.")], "", get_mode("moe-orchestrator"))
            seen.append(run_prompts())
        finally:
            RUN_PROMPTS.reset(token)
    assert seen[0] == seen[1] and {"expert.direct.structured", "merger.judge.structured"} <= set(seen[0])


def test_a_schema_that_cannot_be_applied_to_an_answer_is_its_mismatch_never_an_exception() -> None:
    """A reference cycle that only an answer's value walks into passes the request's check; the answer's check
    then says so (a 422 at the gateway), never a 500. A recursive schema that ends is followed."""
    tree = structured.from_wire({"type": "json_schema", "json_schema": {"name": "tree", "schema": {
        "type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#"}}}}}}, "response_format")
    assert tree is not None and structured.mismatch('{"kids": [{"kids": []}]}', tree) is None
    assert "at kids/0/kids" in (structured.mismatch('{"kids": [{"kids": 5}]}', tree) or "")
    schema = {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}},
              "properties": {"x": {"$ref": "#/$defs/a"}}}
    cycle = structured.from_wire({"type": "json_schema", "json_schema": {"name": "cycle", "schema": schema}},
                                 "response_format")
    assert cycle is not None and "refers to itself without end" in (structured.mismatch('{"x": 1}', cycle) or "")


REDOS = {"type": "object", "properties": {"s": {"type": "string", "pattern": "^(a|aa)+$"}},
         "patternProperties": {"^x_": {"type": "integer"}}, "additionalProperties": False}


@pytest.mark.timeout(120)  # without the bound the ReDoS check below never returns: fail with a stack, not hang
def test_the_schemas_regexes_run_in_bounded_time_and_keep_their_meaning() -> None:
    """A client's pattern runs on the model's text: one that backtracks without end (ReDoS) is a mismatch that
    says a pattern took too long, not a gateway whose event loop hangs. pattern, patternProperties and
    additionalProperties (the keywords whose regexes are bounded) mean what jsonschema's own mean."""
    fmt = structured.from_wire({"type": "json_schema", "json_schema": {"name": "x", "schema": REDOS}}, "rf")
    assert fmt is not None
    assert "took too long" in (structured.mismatch(json.dumps({"s": "a" * 5000 + "!"}), fmt) or "")
    assert structured.mismatch('{"s": "aaa", "x_1": 2}', fmt) is None
    assert "'q' was unexpected" in (structured.mismatch('{"s": "aaa", "q": 1}', fmt) or "")
    assert "at x_1" in (structured.mismatch('{"x_1": "two"}', fmt) or "")
    assert "does not match '^(a|aa)+$'" in (structured.mismatch('{"s": "b"}', fmt) or "")


@pytest.mark.parametrize("answer", ['{"s": "aaa"}', '{"x_1": 2}'])
def test_the_schemas_regexes_run_under_the_bound(monkeypatch: pytest.MonkeyPatch, answer: str) -> None:
    """pattern and patternProperties search under REGEX_TIMEOUT_S: with a bound no search can meet, even a harmless
    answer is "took too long" (a keyword left on Python's `re`, or a search without the timeout, would check it and
    pass)."""
    fmt = structured.from_wire({"type": "json_schema", "json_schema": {"name": "x", "schema": REDOS}}, "rf")
    assert fmt is not None
    monkeypatch.setattr(structured, "REGEX_TIMEOUT_S", 0)
    assert "took too long" in (structured.mismatch(answer, fmt) or "")
