"""Tool passthrough in the inference client: tools reach the model, its calls come back in OpenAI form
(non-streamed and streamed, OpenAI-compatible and Ollama servers) — against the scripted server."""

from __future__ import annotations

import json

import httpx
import pytest

from moe_core.llm.inference import InferenceClient, InferenceConfig, InferenceServer, ModelRef
from tests.support.scripted_llm import create_app as scripted_app

pytestmark = pytest.mark.unit
SCHEMA = {"type": "object", "properties": {"path": {"type": "string"}}}
TOOLS = [{"type": "function", "function": {"name": "read_file", "description": "read a file", "parameters": SCHEMA}}]
CALLS = [{"name": "read_file", "arguments": {"path": "src/main.py"}}]


def _client(api: str) -> tuple[InferenceClient, object]:
    llm = scripted_app({"models": ["m"], "rules": [{"contains": "read", "tool_calls": CALLS}]})
    config = InferenceConfig(servers=[InferenceServer(name="s", url="http://s", api=api, models=["m"])])
    return InferenceClient(config, httpx.AsyncClient(transport=httpx.ASGITransport(app=llm))), llm


@pytest.mark.parametrize("api", ["openai", "ollama"])
async def test_chat_passes_tools_and_returns_the_calls(api: str) -> None:
    client, llm = _client(api)
    history = [{"role": "user", "content": "read it"},
               {"role": "assistant", "content": "", "tool_calls": [{"id": "call_9", "type": "function",
                                                                    "function": {"name": "read_file",
                                                                                 "arguments": '{"path": "a"}'}}]},
               {"role": "tool", "tool_call_id": "call_9", "content": "file a"},
               {"role": "user", "content": "now read the main file"}]
    done = await client.chat([ModelRef(model="m")], history, tools=TOOLS, tool_choice="auto")
    assert done.content == ""
    assert [c["function"]["name"] for c in done.tool_calls] == ["read_file"]
    assert json.loads(done.tool_calls[0]["function"]["arguments"]) == {"path": "src/main.py"}
    assert done.tool_calls[0]["type"] == "function" and done.tool_calls[0]["id"]
    body = llm.state.scripted.get_calls()[0]["body"]  # type: ignore[attr-defined]
    assert body["tools"] == TOOLS
    sent = body["messages"][1]["tool_calls"][0]["function"]["arguments"]
    if api == "ollama":  # Ollama wants objects, OpenAI JSON strings
        assert sent == {"path": "a"} and "tool_choice" not in body
    else:
        assert sent == '{"path": "a"}' and body["tool_choice"] == "auto"


async def test_stream_assembles_fragmented_tool_calls() -> None:
    client, _ = _client("openai")
    deltas = [d async for d in client.stream([ModelRef(model="m")], [{"role": "user", "content": "read"}],
                                             tools=TOOLS)]
    assert "".join(d.content for d in deltas) == ""
    last = deltas[-1]
    assert last.done and last.finish_reason == "tool_calls"
    assert [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in last.tool_calls] == [
        ("call_0", "read_file", {"path": "src/main.py"})]


async def test_without_tools_nothing_tool_related_is_sent() -> None:
    client, llm = _client("openai")
    done = await client.chat([ModelRef(model="m")], [{"role": "user", "content": "hello"}], tool_choice="auto")
    assert done.tool_calls == [] and done.content == "scripted default reply"
    body = llm.state.scripted.get_calls()[0]["body"]  # type: ignore[attr-defined]
    assert "tools" not in body and "tool_choice" not in body
