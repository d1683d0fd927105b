"""Request bodies and response parsing for the OpenAI-compatible and Ollama chat APIs."""

from __future__ import annotations

import json
from typing import Any

from moe_core.llm.inference import tools as tool_wire
from moe_core.runtime.inference_errors import InferenceError


def openai_body(call: dict[str, Any], model: str, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": call["messages"], "stream": stream}
    for key in ("max_tokens", "temperature", "top_p", "stop"):
        if call.get(key) is not None:
            body[key] = call[key]
    if call.get("json_schema") is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": call.get("schema_name", "output"), "schema": call["json_schema"]},
        }
        if call.get("strict") is not None:  # a client's structured output: its strict flag
            body["response_format"]["json_schema"]["strict"] = call["strict"]
    if call.get("tools"):
        body["tools"] = call["tools"]
        if call.get("tool_choice") is not None:
            body["tool_choice"] = call["tool_choice"]
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def ollama_body(call: dict[str, Any], model: str, stream: bool) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if call.get("max_tokens") is not None:
        options["num_predict"] = call["max_tokens"]
    for key in ("temperature", "top_p", "stop"):
        if call.get(key) is not None:
            options[key] = call[key]
    messages = [_ollama_images(m) for m in tool_wire.ollama_messages(call["messages"])]
    body: dict[str, Any] = {"model": model, "messages": messages,
                            "stream": stream, "options": options}
    if call.get("tools"):
        body["tools"] = call["tools"]
    if call.get("json_schema") is not None:
        body["format"] = call["json_schema"]
    if call.get("keep_alive") is not None:  # 0: unload the model once this call has answered
        body["keep_alive"] = call["keep_alive"]
    return body


def _ollama_images(message: dict[str, Any]) -> dict[str, Any]:
    """OpenAI content parts (text, image_url data URLs) -> Ollama's text `content` and base64 `images`."""
    content = message.get("content")
    if not isinstance(content, list):
        return message
    text = "\n".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
    images = [str((p.get("image_url") or {}).get("url", "")).partition(",")[2]
              for p in content if p.get("type") == "image_url"]
    return {**message, "content": text, **({"images": images} if images else {})}


def parse_openai(data: dict[str, Any], server: str, model: str) -> tuple[str, str, int, int]:
    try:
        choice = data["choices"][0]
        content = choice["message"].get("content") or ""
        usage = data.get("usage") or {}
        return content, choice.get("finish_reason") or "stop", usage.get("prompt_tokens", 0), usage.get(
            "completion_tokens", 0
        )
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise InferenceError("bad_response", f"unexpected OpenAI response: {exc}", server=server, model=model) from exc


def parse_ollama(data: dict[str, Any], server: str, model: str) -> tuple[str, str, int, int]:
    try:
        content = data["message"].get("content") or ""
        return content, data.get("done_reason") or "stop", data.get("prompt_eval_count", 0), data.get(
            "eval_count", 0
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise InferenceError("bad_response", f"unexpected Ollama response: {exc}", server=server, model=model) from exc


def openai_stream_line(line: str) -> dict[str, Any] | None:
    """One SSE line -> chunk dict; None for comments, blanks and [DONE]."""
    if not line.startswith("data:"):
        return None
    payload = line[5:].strip()
    if not payload or payload == "[DONE]":
        return None
    chunk: dict[str, Any] = json.loads(payload)
    return chunk
