"""Errors in the OpenAI envelope, deadlines, and a stage killed mid-request."""

from __future__ import annotations

import threading
import time

import httpx
import openai
import pytest

from tests.conftest import Scripted
from tests.e2e.helpers import marker, plan_reply
from tests.support.fleet import Fleet
from tests.support.moe_fields import moe

pytestmark = pytest.mark.e2e


def test_missing_key_is_401(base_url: str) -> None:
    response = httpx.post(f"{base_url}/chat/completions", json={"model": "moe-orchestrator", "messages": []})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_wrong_key_is_401_with_the_sdk(base_url: str) -> None:
    client = openai.OpenAI(base_url=base_url, api_key="moe-nope-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as err:
        client.chat.completions.create(model="moe-orchestrator", messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 401
    assert err.value.code == "invalid_api_key"


def test_unknown_model_is_404(base_url: str, api_key: str) -> None:
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="llama-nonexistent", messages=[{"role": "user", "content": "hi"}])
    assert err.value.code == "model_not_found"
    assert err.value.param == "model"


@pytest.mark.parametrize("body", [
    {"model": "moe-orchestrator", "messages": []},
    {"model": "moe-orchestrator"},
    {"model": "moe-orchestrator", "messages": [{"role": "wizard", "content": "hi"}]},
    {"model": "moe-orchestrator", "messages": [{"role": "user", "content": "hi"}], "temperature": 7},
    {"model": "moe-orchestrator", "messages": [{"role": "user", "content": "hi"}], "n": 3},
    {"model": "moe-orchestrator", "messages": [{"role": "assistant", "content": "only me"}]},
    [1, 2, 3],
])
def test_malformed_requests_are_400(base_url: str, api_key: str, body: object) -> None:
    response = httpx.post(f"{base_url}/chat/completions", json=body, headers={"Authorization": f"Bearer {api_key}"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]


def test_invalid_json_is_400(base_url: str, api_key: str) -> None:
    response = httpx.post(f"{base_url}/chat/completions", content=b"{not json",
                          headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"})
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]["message"]


def test_deadline_answers_with_what_it_has_and_names_what_is_missing(
        base_url: str, api_key: str, scripted: Scripted) -> None:
    m = marker()
    scripted.script([
        {"model": "planner-model", "contains": m,
         "reply": plan_reply(("general", f"Quick part {m}"), ("math", f"SLOW part {m}"))},
        {"model": "expert-model", "contains": f"Quick part {m}", "reply": "The quick half.\nCONFIDENCE: high"},
        {"model": "expert-model", "contains": f"SLOW part {m}", "reply": "too late", "delay_ms": 15000},
    ])
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0,
                           default_headers={"X-Request-Timeout": "4"})
    response = client.chat.completions.create(model="moe-orchestrator",
                                              messages=[{"role": "user", "content": f"Two parts {m}"}])
    content = response.choices[0].message.content or ""
    assert content.startswith("The quick half.")
    assert "math" in content
    assert moe(response)["missing"] == ["math"]


def test_deadline_with_nothing_answered_is_504(base_url: str, api_key: str, scripted: Scripted) -> None:
    m = marker()
    scripted.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"SLOW {m}"))},
        {"model": "expert-model", "contains": m, "reply": "too late", "delay_ms": 15000},
    ])
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0,
                           default_headers={"X-Request-Timeout": "3"})
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(model="moe-orchestrator", messages=[{"role": "user", "content": m}])
    assert err.value.status_code == 504
    assert err.value.code == "deadline_exceeded"


def test_a_request_longer_than_every_models_context_is_400_not_a_retryable_503(
        base_url: str, api_key: str, scripted: Scripted) -> None:
    """The inference server refuses the prompt as longer than its context (llama.cpp's 400): no retry mends that, so
    the client gets 400 context_length_exceeded (Anthropic: invalid_request_error), never the 503 / overloaded_error
    that Claude Code and the Codex CLI retried for minutes."""
    import anthropic

    m = marker()
    scripted.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Answer it {m}"))},
        {"model": "expert-model", "contains": m, "reply": "never sent", "context_tokens": 5},
        {"model": "judge-model", "contains": m, "reply": "never sent", "context_tokens": 5},
    ])
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="moe-orchestrator", messages=[{"role": "user", "content": m}])
    assert err.value.status_code == 400 and err.value.code == "context_length_exceeded"
    assert "longer than the models' context" in err.value.message
    ant = anthropic.Anthropic(base_url=base_url.removesuffix("/v1"), api_key=api_key, max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as refused:
        ant.messages.create(model="moe-orchestrator", max_tokens=64, messages=[{"role": "user", "content": f"{m} 2"}])
    assert refused.value.status_code == 400 and refused.value.body["error"]["type"] == "invalid_request_error"


def test_a_503_names_no_server_or_model_of_the_fleet(base_url: str, api_key: str, scripted: Scripted) -> None:
    """Every expert call fails: the client is told the failure's kind and the response id, never the inference
    servers' names or addresses or the models (a bank's API client saw them in the 503's message)."""
    m = marker()
    scripted.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Fail it {m}"))},
        {"model": "expert-model", "contains": m, "status": 500},
        {"model": "judge-model", "contains": m, "status": 500},
    ])
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="moe-orchestrator", messages=[{"role": "user", "content": m}])
    assert err.value.status_code == 503 and err.value.code == "inference_unavailable"
    said = err.value.message
    assert "no expert could answer (http_status); " in said and "response id " in said
    for internal in ("scripted", "expert-model", "127.0.0.1", "server=", "http://"):
        assert internal not in said


def test_sigkill_of_the_expert_worker_loses_nothing(
        fleet: Fleet, base_url: str, api_key: str, scripted: Scripted) -> None:
    m = marker()
    scripted.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Survive {m}"))},
        {"model": "expert-model", "contains": m, "reply": "I survived.\nCONFIDENCE: high", "delay_ms": 3000},
    ])
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=90)
    outcome: dict[str, object] = {}

    def ask() -> None:
        try:
            outcome["response"] = client.chat.completions.create(
                model="moe-orchestrator", messages=[{"role": "user", "content": f"Kill test {m}"}])
        except Exception as exc:  # reported by the assertions below
            outcome["error"] = exc

    asker = threading.Thread(target=ask)
    asker.start()
    end = time.monotonic() + 30
    while not [c for c in scripted.calls("expert-model") if m in str(c["messages"])]:
        assert time.monotonic() < end, "the expert task never reached the expert model"
        time.sleep(0.05)
    worker = fleet["expert-worker"]
    worker.kill()  # SIGKILL while the task is in flight: its offset is not committed
    worker.start()
    worker.wait_ready()
    asker.join(timeout=90)
    assert "error" not in outcome, outcome.get("error")
    response = outcome["response"]
    assert response.choices[0].message.content == "I survived."  # type: ignore[attr-defined]
    expert_calls = [c for c in scripted.calls("expert-model") if m in str(c["messages"])]
    assert len(expert_calls) >= 2  # the task was delivered again to the restarted worker
