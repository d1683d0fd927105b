"""End-to-end journeys through the real fleet with the official openai SDK (scripted models)."""

from __future__ import annotations

import json
import re

import httpx
import openai
import pytest

from tests.conftest import Scripted
from tests.e2e.helpers import calls_for, expected_usage, marker, plan_reply
from tests.support.fleet import Fleet
from tests.support.moe_fields import moe

RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")  # a log record's first line

pytestmark = pytest.mark.e2e


@pytest.fixture
def client(base_url: str, api_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=60)


def test_single_expert_high_confidence_takes_the_fast_path(client: openai.OpenAI, scripted: Scripted) -> None:
    m = marker()
    scripted.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Name the capital of France {m}"))},
        {"model": "expert-model", "contains": m, "reply": "Paris is the capital of France.\nCONFIDENCE: high"},
    ])
    response = client.chat.completions.create(
        model="moe-orchestrator", messages=[{"role": "user", "content": f"What is the capital of France? {m}"}])
    assert response.object == "chat.completion"
    assert response.id.startswith("chatcmpl-")
    assert response.model == "moe-orchestrator"
    assert response.choices[0].message.role == "assistant"
    assert response.choices[0].message.content == "Paris is the capital of France."
    assert response.choices[0].finish_reason == "stop"
    calls = calls_for(scripted.calls(), m)
    assert [c["model"] for c in calls] == ["planner-model", "expert-model"]  # no judge on the fast path
    prompt, completion = expected_usage(calls)
    assert response.usage is not None
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (prompt, completion)
    assert response.usage.total_tokens == prompt + completion
    meta = moe(response)
    assert meta["response_id"] == response.id.removeprefix("chatcmpl-")
    assert meta["cache_hit"] is False
    assert meta["experts_used"] == ["general"]
    assert meta["sources"] == [{"kind": "expert", "ref": "general:expert-model@scripted",  # the original's type and
                                "type": "expert", "label": "general:expert-model@scripted"}]  # label beside them


def test_two_experts_are_merged_by_the_judge(client: openai.OpenAI, scripted: Scripted) -> None:
    m = marker()
    scripted.script([
        {"model": "planner-model", "contains": m,
         "reply": plan_reply(("general", f"Explain tides {m}"), ("science", f"Give the physics of tides {m}"))},
        {"model": "expert-model", "contains": f"Explain tides {m}",
         "reply": "The moon pulls the sea.\nCONFIDENCE: medium"},
        {"model": "expert-model", "contains": f"physics of tides {m}", "reply": "Gravity gradients.\nCONFIDENCE: high"},
        {"model": "judge-model", "contains": m, "reply": "Tides come from the moon's gravity gradient."},
    ])
    response = client.chat.completions.create(
        model="moe-orchestrator", messages=[{"role": "user", "content": f"Why are there tides? {m}"}])
    assert response.choices[0].message.content == "Tides come from the moon's gravity gradient."
    calls = calls_for(scripted.calls(), m)
    # two judge-model calls: the merger's thinking step (two tasks), then the judge
    assert sorted(c["model"] for c in calls) == ["expert-model", "expert-model", "judge-model", "judge-model",
                                                 "planner-model"]
    judge = [c for c in calls if c["model"] == "judge-model"][-1]
    judge_prompt = judge["messages"][-1]["content"]
    assert "The moon pulls the sea." in judge_prompt and "Gravity gradients." in judge_prompt
    assert response.usage is not None
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == expected_usage(calls)
    assert sorted(moe(response)["experts_used"]) == ["general", "science"]


def test_streaming_sends_openai_chunks_with_usage(client: openai.OpenAI, scripted: Scripted) -> None:
    m = marker()
    scripted.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Say hello {m}"))},
        {"model": "expert-model", "contains": m, "reply": "Hello there, friend.\nCONFIDENCE: high"},
    ])
    chunks = list(client.chat.completions.create(
        model="moe-orchestrator", messages=[{"role": "user", "content": f"Greet me {m}"}],
        stream=True, stream_options={"include_usage": True}))
    assert all(c.object == "chat.completion.chunk" and c.model == "moe-orchestrator" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello there, friend."
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == [] and usage_chunk.usage is not None
    prompt, completion = expected_usage(calls_for(scripted.calls(), m))
    assert (usage_chunk.usage.prompt_tokens, usage_chunk.usage.completion_tokens) == (prompt, completion)


def test_raw_sse_stream_ends_with_done(base_url: str, api_key: str, scripted: Scripted) -> None:
    m = marker()
    scripted.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Say yes {m}"))},
        {"model": "expert-model", "contains": m, "reply": "Yes.\nCONFIDENCE: high"},
    ])
    body = {"model": "moe-orchestrator", "stream": True, "messages": [{"role": "user", "content": f"Yes? {m}"}]}
    with httpx.stream("POST", f"{base_url}/chat/completions", json=body, timeout=60,
                      headers={"Authorization": f"Bearer {api_key}"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    payloads = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert payloads[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in p for p in payloads)  # no usage chunk unless include_usage


def test_models_lists_the_modes(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert "moe-orchestrator" in ids
    assert client.models.retrieve("moe-orchestrator").id == "moe-orchestrator"


def test_two_gateway_replicas_both_serve(base_url: str, api_key: str, scripted: Scripted) -> None:
    m = marker()
    scripted.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Ping {m}"))},
        {"model": "expert-model", "contains": m, "reply": "Pong.\nCONFIDENCE: high"},
    ])
    replicas: set[str] = set()
    for _ in range(40):
        with httpx.Client(timeout=60) as fresh:  # a new connection each time, so the kernel spreads them
            response = fresh.post(f"{base_url}/chat/completions", headers={"Authorization": f"Bearer {api_key}"},
                                  json={"model": "moe-orchestrator", "messages": [{"role": "user", "content": m}]})
        assert response.status_code == 200
        assert response.json()["choices"][0]["message"]["content"] == "Pong."
        replicas.add(response.headers["x-moe-replica"])
        if len(replicas) >= 2:
            break
    assert len(replicas) >= 2


def test_a_request_leaves_no_info_line_in_the_stages_logs(client: openai.OpenAI, scripted: Scripted,
                                                         fleet: Fleet) -> None:
    """Per-message logging is DEBUG (issue 29 item 3): an ordinary request writes no INFO line in any stage's log;
    what happened to it is on the audit and trace records."""
    m = marker()
    scripted.script([
        {"model": "planner-model", "contains": m,
         "reply": plan_reply(("general", f"Explain dunes {m}"), ("science", f"Give the physics of dunes {m}"))},
        {"model": "expert-model", "contains": m, "reply": "Wind moves sand.\nCONFIDENCE: medium"},
        {"model": "judge-model", "contains": m, "reply": "Dunes are sand moved by wind."},
    ])
    response = client.chat.completions.create(
        model="moe-orchestrator", messages=[{"role": "user", "content": f"How do dunes form? {m}"}])
    assert response.choices[0].message.content == "Dunes are sand moved by wind."
    rid = response.id.removeprefix("chatcmpl-")
    lines = [line for service in fleet.services.values() if service.log.exists()
             for line in service.log.read_text(errors="replace").splitlines() if f"rid={rid}" in line]
    assert [line for line in lines if " INFO " in line] == []


def test_every_stage_logs_in_the_fleets_format(client: openai.OpenAI, fleet: Fleet) -> None:
    """One log format fleet-wide (moe_core.runtime.observability.logging): FastStream's and Neo4j's records go through
    it
    too: no terminal colour codes in a log file, every record names its service and response id, and no start-up
    warning that is not one (FastStream's "auto create topics is disabled": the fleet creates its topics)."""
    assert client.models.list().data  # the fleet is up and answering
    for name, service in fleet.services.items():
        text = service.log.read_text(errors="replace") if service.log.exists() else ""
        records = [line for line in text.splitlines() if RECORD.match(line)]
        assert records, f"{name} wrote no log record"
        assert "\x1b[" not in text, f"{name}'s log has terminal colour codes"
        assert "Auto create topics is disabled" not in text
        assert [line for line in records if " rid=" not in line] == [], f"{name}: a record outside the format"
