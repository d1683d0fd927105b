"""Tool use between the wire formats. Internally (contracts, expert models) tools are in the OpenAI
form; the Anthropic surface maps tool definitions, tool_choice, tool_use and tool_result to and from it."""

from __future__ import annotations

import json
from typing import Any

from moe_core.contracts import Answer

TOOL_NAME = r"^[a-zA-Z0-9_-]{1,64}$"  # a tool name both protocols accept
RAW_ARGUMENTS = "_raw_arguments"  # Anthropic input for arguments that are not a JSON object


def tool_calls(answer: Answer) -> list[dict[str, Any]]:
    """The answer's tool calls in the OpenAI shape; ids and arguments are kept as the model produced them
    (a missing id is made up, arguments given as an object are serialised)."""
    calls = []
    for i, call in enumerate(answer.tool_calls):
        function = call.get("function") or {}
        arguments = function.get("arguments", "")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)
        calls.append({
            "id": str(call.get("id") or f"call_{answer.response_id[:16]}_{i}"),
            "type": "function",
            "function": {"name": str(function.get("name", "")), "arguments": arguments},
        })
    return calls


def arguments_object(arguments: str) -> dict[str, Any]:
    """OpenAI arguments (a JSON string) -> Anthropic input (an object)."""
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except json.JSONDecodeError:
        return {RAW_ARGUMENTS: arguments}
    return value if isinstance(value, dict) else {RAW_ARGUMENTS: arguments}


def arguments_string(value: dict[str, Any]) -> str:
    """Anthropic input -> OpenAI arguments; the inverse of arguments_object."""
    if set(value) == {RAW_ARGUMENTS} and isinstance(value[RAW_ARGUMENTS], str):
        return value[RAW_ARGUMENTS]
    return json.dumps(value, ensure_ascii=False)


def tool_use_block(call: dict[str, Any]) -> dict[str, Any]:
    """One OpenAI tool call -> an Anthropic tool_use content block."""
    function = call["function"]
    return {"type": "tool_use", "id": call["id"], "name": function["name"],
            "input": arguments_object(function["arguments"])}


def openai_call(tool_id: str, name: str, value: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic tool_use block's fields -> one OpenAI tool call."""
    return {"id": tool_id, "type": "function", "function": {"name": name, "arguments": arguments_string(value)}}


def openai_tool(name: str, description: str | None, input_schema: dict[str, Any]) -> dict[str, Any]:
    """A tool definition (an Anthropic or a Responses API tool) -> the OpenAI form."""
    function: dict[str, Any] = {"name": name, "parameters": input_schema}
    if description:
        function["description"] = description
    return {"type": "function", "function": function}


def openai_tool_choice(choice: dict[str, Any] | None) -> str | dict[str, Any] | None:
    """Anthropic tool_choice ({type: auto|any|tool|none, name}) -> OpenAI tool_choice."""
    if choice is None:
        return None
    kind = choice.get("type")
    if kind == "tool":
        return {"type": "function", "function": {"name": choice["name"]}}
    return {"auto": "auto", "any": "required", "none": "none"}[str(kind)]
