"""Exact answers without an LLM, through the gateway with the official openai SDK: the planner's
preflight routes a tool-answerable question to the mcp service, the merger answers with the tool's
sentence, and no model is called (zero tokens). A mixed question still goes through the planner model,
which may plan a tool task next to an expert task."""

from __future__ import annotations

import json
import uuid

import openai
import pytest

from tests.conftest import Scripted
from tests.support.moe_fields import moe

pytestmark = pytest.mark.e2e

EXACT = [
    ("What is 17% of 2,340?", "17% of 2,340 = 397.8"),
    ("How many days are between 2024-02-01 and 2024-03-01?",
     "There are 29 days between 2024-02-01 and 2024-03-01 (4 weeks and 1 day); 21 business days (Monday to Friday, "
     "end date excluded)."),
    ('Give me the SHA-256 of "a b  c"', "SHA-256('a b  c') = "
     "67f6081a4848a73387fe272ba764648806f99e52c8894c49a2f33f50207aaa49"),  # the quoted text, spaces and all
    ("What day of the week is 100 days after 2024-01-01?",  # compound: two tools chained
     "2024-01-01 + 100 days = 2024-04-10 (Wednesday); then 2024-04-10 is a Wednesday (ISO week 15)."),
    ("Convert 100 km/h to m/s", "100 km/h = 27.7777777777778 m/s (exactly 250/9)"),
    ("What is 1/0?", "No exact result: division by zero."),  # an input-caused failure is the exact answer
]


@pytest.fixture
def client(base_url: str, api_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=60)


@pytest.mark.parametrize(("question", "answer"), EXACT)
def test_precision_questions_are_answered_exactly_with_zero_tokens(client: openai.OpenAI, scripted: Scripted,
                                                                   question: str, answer: str) -> None:
    response = client.chat.completions.create(model="moe-orchestrator",
                                              messages=[{"role": "user", "content": question}])
    assert response.choices[0].message.content == answer
    assert response.choices[0].finish_reason == "stop"
    assert response.usage is not None
    assert (response.usage.prompt_tokens, response.usage.completion_tokens, response.usage.total_tokens) == (0, 0, 0)
    assert scripted.calls() == [], "no model may be called for a precision question"
    meta = moe(response)
    assert meta["experts_used"] == ["precision"]
    assert [s["kind"] for s in meta["sources"]] == ["tool"]


def test_a_streamed_precision_answer_reports_zero_usage(client: openai.OpenAI, scripted: Scripted) -> None:
    stream = client.chat.completions.create(model="moe-orchestrator", stream=True,
                                            stream_options={"include_usage": True},
                                            messages=[{"role": "user", "content": "What is 17% of 2,340?"}])
    content, usage = "", None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            content += chunk.choices[0].delta.content
        if chunk.usage is not None:
            usage = chunk.usage
    assert content == "17% of 2,340 = 397.8"
    assert usage is not None and usage.total_tokens == 0
    assert scripted.calls() == []


def test_a_mixed_question_gets_a_tool_task_from_the_planner_model(client: openai.OpenAI, scripted: Scripted) -> None:
    m = f"M{uuid.uuid4().hex[:8]}"
    plan = {"tasks": [
        {"kind": "tool", "category": "precision", "tool": "calculate", "args": {"expression": "17% of 2340"},
         "instruction": "compute 17% of 2340"},
        {"kind": "expert", "category": "general", "instruction": f"Explain what a VAT rate means {m}"},
    ]}
    scripted.script([
        {"model": "planner-model", "contains": m, "reply": json.dumps(plan)},
        {"model": "expert-model", "contains": m, "reply": "A VAT rate is a share of the price.\nCONFIDENCE: high"},
        {"model": "judge-model", "contains": "397.8", "reply": f"17% of 2,340 is 397.8; VAT is a share. {m}"},
    ])
    response = client.chat.completions.create(
        model="moe-orchestrator",
        messages=[{"role": "user", "content": f"What is 17% of 2,340 and what does a VAT rate mean? {m}"}])
    assert response.choices[0].message.content == f"17% of 2,340 is 397.8; VAT is a share. {m}"
    planner_calls = [c for c in scripted.calls("planner-model") if m in json.dumps(c["messages"])]
    assert len(planner_calls) == 1
    assert "calculate" in planner_calls[0]["messages"][0]["content"], "the planner model sees the tool catalogue"
    judge_calls = scripted.calls("judge-model")
    assert any("17% of 2,340 = 397.8" in json.dumps(c["messages"]) for c in judge_calls), \
        "the judge merges the tool's exact result"
    meta = moe(response)
    assert sorted(meta["experts_used"]) == ["general", "precision"]
    assert {"kind": "tool", "ref": "calculate@1.0.0"} in [{"kind": s["kind"], "ref": s["ref"]}
                                                           for s in meta["sources"]]
