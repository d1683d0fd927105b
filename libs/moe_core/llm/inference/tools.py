"""Tool calls on the wire: OpenAI form inside the fleet, converted from and to Ollama's form."""

from __future__ import annotations

import json
import uuid
from typing import Any


def _openai_call(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    arguments = function.get("arguments", "")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return {"id": call.get("id") or f"call_{uuid.uuid4().hex[:24]}", "type": "function",
            "function": {"name": function.get("name", ""), "arguments": arguments}}


def tool_calls_of(data: dict[str, Any], api: str) -> list[dict[str, Any]]:
    """The tool calls of a non-streamed response, in OpenAI form (arguments as a JSON string)."""
    try:
        message = data["message"] if api == "ollama" else data["choices"][0]["message"]
    except (KeyError, IndexError, TypeError):
        return []
    calls = (message or {}).get("tool_calls") or []
    return [_openai_call(c) for c in calls if isinstance(c, dict)]


def ollama_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ollama wants tool-call arguments as objects, not JSON strings."""
    out: list[dict[str, Any]] = []
    for message in messages:
        calls = message.get("tool_calls")
        if not calls:
            out.append(message)
            continue
        converted = []
        for call in calls:
            function = dict(call.get("function") or {})
            if isinstance(function.get("arguments"), str):
                try:
                    function["arguments"] = json.loads(function["arguments"] or "{}")
                except json.JSONDecodeError:
                    function["arguments"] = {}
            converted.append({"function": function})
        out.append({**message, "tool_calls": converted})
    return out


class ToolCallAssembler:
    """Collects streamed tool-call fragments (OpenAI deltas by index, or Ollama's whole calls)."""

    def __init__(self) -> None:
        self._parts: dict[int, dict[str, Any]] = {}

    def feed(self, chunk: dict[str, Any], ollama: bool) -> None:
        """One parsed stream chunk (moe_core.llm.inference.client parses each line once for everything it reads)."""
        if ollama:
            for call in (chunk.get("message") or {}).get("tool_calls") or []:
                self._parts[len(self._parts)] = _openai_call(call)
            return
        for choice in chunk.get("choices") or []:
            for piece in (choice.get("delta") or {}).get("tool_calls") or []:
                self._merge(piece)

    def _merge(self, piece: dict[str, Any]) -> None:
        index = int(piece.get("index", len(self._parts)))
        part = self._parts.setdefault(index, {"id": "", "type": "function",
                                              "function": {"name": "", "arguments": ""}})
        if piece.get("id"):
            part["id"] = piece["id"]
        function = piece.get("function") or {}
        part["function"]["name"] += function.get("name") or ""
        arguments = function.get("arguments") or ""
        part["function"]["arguments"] += arguments if isinstance(arguments, str) else json.dumps(arguments)

    def result(self) -> list[dict[str, Any]]:
        return [_openai_call(self._parts[i]) for i in sorted(self._parts)]
