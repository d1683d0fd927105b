"""Tests for the scripted OpenAI/Ollama inference test double (tests/support/scripted_llm.py)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.scripted_llm import create_app, start_server_thread

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[3]
SCRIPT: dict[str, Any] = {
    "models": ["planner-model", "expert-model", "judge-model"],
    "rules": [
        {"model": "planner-model", "contains": "plan", "reply": "alpha beta gamma"},
        {"contains": "once", "reply": "first time only", "times": 1},
        {"system_contains": "strict judge", "reply": '{"score": 7}'},
        {"contains": "echo", "reply": "you said: {last_user}"},
        {"contains": "boom", "status": 500},
        {"contains": "slow", "reply": "late", "delay_ms": 200},
        {"contains": "long", "reply": "one two three four five six seven eight"},
    ],
    "default_reply": "scripted default reply",
}


@pytest.fixture
def app():
    return create_app(SCRIPT)


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://llm") as c:
        yield c


def chat_body(model: str, user: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": user}], **extra}


def parse_sse(text: str) -> list[Any]:
    events = [e for e in text.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events), events
    return [e[len("data: "):] if e == "data: [DONE]" else json.loads(e[len("data: "):]) for e in events]


async def test_health_and_model_listings(client):
    assert (await client.get("/health")).json() == {"status": "ok"}
    models = (await client.get("/v1/models")).json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == SCRIPT["models"]
    assert all(m["object"] == "model" and m["owned_by"] == "scripted" and isinstance(m["created"], int)
               for m in models["data"])
    for path in ("/api/tags", "/api/ps"):
        listed = (await client.get(path)).json()["models"]
        assert [(m["name"], m["model"]) for m in listed] == [(n, n) for n in SCRIPT["models"]]


async def test_openai_non_stream_exact_shape(client):
    body = {"model": "planner-model", "temperature": 0.2,
            "messages": [{"role": "system", "content": "You are a planner"},
                         {"role": "user", "content": "please plan the trip"}]}
    r = await client.post("/v1/chat/completions", json=body)
    assert r.status_code == 200
    data = r.json()
    assert data["id"].startswith("chatcmpl-")
    assert data["object"] == "chat.completion" and isinstance(data["created"], int)
    assert data["model"] == "planner-model"
    assert data["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "alpha beta gamma"},
                                "logprobs": None, "finish_reason": "stop"}]
    assert data["usage"] == {"prompt_tokens": 8, "completion_tokens": 3, "total_tokens": 11}


async def test_openai_stream_with_usage(client):
    body = chat_body("planner-model", "plan it", stream=True, stream_options={"include_usage": True})
    r = await client.post("/v1/chat/completions", json=body)
    assert r.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(r.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    content = [c["choices"][0]["delta"]["content"] for c in chunks[1:-2]]
    assert content == ["alpha ", "beta ", "gamma"]
    last = chunks[-2]["choices"][0]
    assert last["delta"] == {} and last["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}


async def test_openai_stream_without_usage(client):
    r = await client.post("/v1/chat/completions", json=chat_body("expert-model", "hi", stream=True))
    events = parse_sse(r.text)
    assert events[-1] == "[DONE]"
    assert all("usage" not in c and len(c["choices"]) == 1 for c in events[:-1])
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in events[:-1])
    assert text == "scripted default reply"


async def test_ollama_non_stream(client):
    body = chat_body("expert-model", "hello there", stream=False, format="json", options={"temperature": 0})
    data = (await client.post("/api/chat", json=body)).json()
    assert data["model"] == "expert-model" and data["created_at"].endswith("Z")
    assert data["message"] == {"role": "assistant", "content": "scripted default reply"}
    assert (data["done"], data["done_reason"]) == (True, "stop")
    assert (data["prompt_eval_count"], data["eval_count"]) == (2, 3)


async def test_ollama_streams_by_default(client):
    r = await client.post("/api/chat", json=chat_body("planner-model", "plan now"))
    assert r.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [ln["message"]["content"] for ln in lines[:-1]] == ["alpha ", "beta ", "gamma"]
    assert all(ln["done"] is False and ln["message"]["role"] == "assistant" for ln in lines[:-1])
    final = lines[-1]
    assert final["done"] is True and final["done_reason"] == "stop"
    assert final["message"] == {"role": "assistant", "content": ""}
    assert (final["prompt_eval_count"], final["eval_count"]) == (2, 3)


async def test_rule_order_times_system_and_echo(client):
    async def reply(model: str, messages: list[dict[str, str]]) -> str:
        r = await client.post("/v1/chat/completions", json={"model": model, "messages": messages})
        return r.json()["choices"][0]["message"]["content"]

    user = [{"role": "user", "content": "plan once"}]
    assert await reply("planner-model", user) == "alpha beta gamma"  # first rule wins
    assert await reply("expert-model", user) == "first time only"  # model filter skips rule 0
    assert await reply("expert-model", user) == "scripted default reply"  # times exhausted
    judge = [{"role": "system", "content": "You are a strict judge."}, {"role": "user", "content": "x"}]
    assert await reply("judge-model", judge) == '{"score": 7}'
    echo = [{"role": "user", "content": "old"}, {"role": "assistant", "content": "a"},
            {"role": "user", "content": "echo me"}]
    assert await reply("expert-model", echo) == "you said: echo me"


async def test_max_tokens_truncation(client):
    r = await client.post("/v1/chat/completions", json=chat_body("expert-model", "long", max_tokens=3))
    data = r.json()
    assert data["choices"][0]["message"]["content"] == "one two three"
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 3
    body = chat_body("expert-model", "long", max_tokens=3, stream=True)
    r = await client.post("/v1/chat/completions", json=body)
    chunks = parse_sse(r.text)[:-1]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "one two three"
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    body = chat_body("expert-model", "long", stream=False, options={"num_predict": 2})
    data = (await client.post("/api/chat", json=body)).json()
    assert (data["message"]["content"], data["done_reason"], data["eval_count"]) == ("one two", "length", 2)


async def test_fail_injection_then_recovery(client):
    await client.post("/_fail", json={"status": 503, "times": 2})
    for _ in range(2):
        r = await client.post("/v1/chat/completions", json=chat_body("expert-model", "hi"))
        assert r.status_code == 503 and r.json()["error"]["type"] == "server_error"
    r = await client.post("/v1/chat/completions", json=chat_body("expert-model", "hi"))
    assert r.status_code == 200
    r = await client.post("/api/chat", json=chat_body("expert-model", "boom", stream=False))
    assert r.status_code == 500 and isinstance(r.json()["error"], str)


async def test_down_and_up(client):
    await client.post("/_down")
    assert (await client.get("/health")).status_code == 503
    assert (await client.get("/api/tags")).status_code == 503
    r = await client.post("/v1/chat/completions", json=chat_body("expert-model", "hi"))
    assert r.status_code == 503 and r.json()["error"]["code"] == "service_unavailable"
    await client.post("/_up")
    assert (await client.get("/health")).json() == {"status": "ok"}


async def test_unknown_model_404(client):
    r = await client.post("/v1/chat/completions", json=chat_body("nope", "hi"))
    assert r.status_code == 404
    err = r.json()["error"]
    assert (err["type"], err["param"], err["code"]) == ("invalid_request_error", "model", "model_not_found")
    r = await client.post("/api/chat", json=chat_body("nope", "hi"))
    assert r.status_code == 404 and r.json() == {"error": "model 'nope' not found"}


async def test_calls_recorded_and_cleared(client, app):
    rf = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    await client.post("/v1/chat/completions", json=chat_body("expert-model", "hi", response_format=rf,
                                                              temperature=0.5, max_tokens=9))
    await client.post("/api/chat", json=chat_body("judge-model", "yo", format={"type": "object"}))
    calls = (await client.get("/_calls")).json()
    assert [(c["api"], c["model"], c["stream"]) for c in calls] == [
        ("openai", "expert-model", False), ("ollama", "judge-model", True)]
    assert (calls[0]["response_format"], calls[0]["temperature"], calls[0]["max_tokens"]) == (rf, 0.5, 9)
    assert calls[1]["format"] == {"type": "object"}
    assert calls[0]["messages"] == [{"role": "user", "content": "hi"}] and calls[0]["cancelled"] is False
    assert app.state.scripted.get_calls() == calls
    await client.delete("/_calls")
    assert (await client.get("/_calls")).json() == []


async def test_put_script_and_delay(client):
    r = await client.put("/_script", json={"models": ["m1"], "rules": [{"reply": "new", "delay_ms": 150}]})
    assert r.status_code == 200
    assert [m["id"] for m in (await client.get("/v1/models")).json()["data"]] == ["m1"]
    t0 = time.perf_counter()
    r = await client.post("/v1/chat/completions", json=chat_body("m1", "hi"))
    assert time.perf_counter() - t0 >= 0.15 and r.json()["choices"][0]["message"]["content"] == "new"
    assert (await client.put("/_script", json={"rules": [{"contians": "typo"}]})).status_code == 400


async def test_concurrent_calls_respect_times(client):
    await client.put("/_script", json={"rules": [{"reply": "limited", "times": 5}]})
    rs = await asyncio.gather(*[client.post("/v1/chat/completions", json=chat_body("expert-model", "x"))
                                for _ in range(20)])
    replies = [r.json()["choices"][0]["message"]["content"] for r in rs]
    assert replies.count("limited") == 5 and len((await client.get("/_calls")).json()) == 20


async def test_openai_sdk(app):
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    async with openai.AsyncOpenAI(base_url="http://llm/v1", api_key="x", http_client=http) as sdk:
        resp = await sdk.chat.completions.create(
            model="planner-model", messages=[{"role": "user", "content": "plan"}])
        assert resp.choices[0].message.content == "alpha beta gamma"
        assert resp.usage is not None and resp.usage.total_tokens == 4
        stream = await sdk.chat.completions.create(
            model="planner-model", messages=[{"role": "user", "content": "plan"}], stream=True,
            stream_options={"include_usage": True})
        parts, usage = [], None
        async for chunk in stream:
            if chunk.choices:
                parts.append(chunk.choices[0].delta.content or "")
            usage = chunk.usage or usage
        assert "".join(parts) == "alpha beta gamma" and usage is not None and usage.completion_tokens == 3


@pytest.fixture
def live_server() -> Iterator[tuple[str, Any]]:
    app = create_app({"rules": [{"reply": "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10", "token_delay_ms": 100}]})
    url, stop = start_server_thread(app=app)
    yield url, app.state.scripted
    stop()


async def test_stream_emits_over_time_and_records_cancel(live_server):
    url, state = live_server
    async with httpx.AsyncClient(base_url=url, timeout=10) as c:
        t0 = time.perf_counter()
        async with c.stream("POST", "/api/chat", json=chat_body("expert-model", "go")) as r:
            first_at = None
            async for line in r.aiter_lines():
                if line:
                    first_at = first_at or time.perf_counter() - t0
        total = time.perf_counter() - t0
        # ten words 100 ms apart: the first arrives at least 0.5 s before the last (a lower bound, set by the
        # script's own delays; a loaded machine only widens it), so the stream was not buffered
        assert first_at is not None and total - first_at >= 0.5
        assert state.get_calls()[-1]["cancelled"] is False

        body = chat_body("expert-model", "go", stream=True)
        async with c.stream("POST", "/v1/chat/completions", json=body) as r:
            async for line in r.aiter_lines():
                if "w1" in line:
                    break  # leave early: the client closes the connection
    for _ in range(100):
        if state.get_calls()[-1]["cancelled"]:
            break
        await asyncio.sleep(0.02)
    assert state.get_calls()[-1]["cancelled"] is True


def test_subprocess_listening_line(tmp_path):
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"models": ["only-model"]}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.scripted_llm", "--port", "0", "--host", "127.0.0.1",
         "--script", str(script)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout=15)
        assert lines and lines[0].startswith("LISTENING http://127.0.0.1:"), (lines, proc.poll())
        url = lines[0].split()[1]
        assert httpx.get(f"{url}/health").json() == {"status": "ok"}
        assert [m["id"] for m in httpx.get(f"{url}/v1/models").json()["data"]] == ["only-model"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
