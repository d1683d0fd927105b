"""OpenAI Responses API wire shapes (POST /v1/responses): the request model, its input items mapped to the
internal (OpenAI chat form) messages, and the `response` object built from an Answer.

Input: a string (one user message) or a list of items: messages (`role` user/system/developer/assistant,
content a string or `input_text`/`output_text` parts), `function_call` items (the model's earlier calls)
and `function_call_output` items (the client's results); `reasoning` items are accepted and not sent on.
`instructions` become the system message of this response only (not carried to the next one).
Tools: `function` tools, and `custom` (freeform) tools, which the models see as a function with one string
argument `input`; their calls come back as `custom_tool_call` items (input and output items of that type
are accepted too).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StrictBool, StrictStr, model_validator

from gateway.tools import TOOL_NAME, openai_tool, tool_calls
from moe_core.contracts import Answer, ChatMessage, GenerationParams, ResponseFormat
from moe_core.llm import structured
from moe_core.runtime.openai_error import OpenAIError, parse_object

IGNORED_ITEMS = {"reasoning"}
TEXT_PARTS = {"input_text", "output_text", "text"}


CUSTOM_INPUT = {"type": "object", "properties": {"input": {"type": "string", "description": "The tool's whole "
                                                           "input as free text (not JSON)"}}, "required": ["input"]}


class FunctionTool(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["function", "custom"]
    name: str = Field(pattern=TOOL_NAME)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: StrictBool | None = None

    def chat_tool(self) -> dict[str, Any]:
        parameters = CUSTOM_INPUT if self.type == "custom" else self.parameters or {"type": "object", "properties": {}}
        return openai_tool(self.name, self.description, parameters)


class ResponsesRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    input: str | list[dict[str, Any]] = Field(min_length=1)
    instructions: str | None = None
    previous_response_id: str | None = Field(default=None, min_length=1, max_length=200)
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: StrictBool | None = None
    stream: StrictBool = False
    store: StrictBool = True
    max_output_tokens: int | None = Field(default=None, ge=1, le=32768)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    user: str | None = None
    metadata: dict[str, StrictStr] | None = None  # echoed in the response: OpenAI's type, strings only
    text: dict[str, Any] | None = None
    _format: ResponseFormat | None = PrivateAttr(default=None)  # text.format read (moe_core.llm.structured)

    @model_validator(mode="after")
    def _tools(self) -> ResponsesRequest:
        self._format = structured.from_wire((self.text or {}).get("format"), "text.format", nested=False)
        names = {t.name for t in self.function_tools()}
        choice = self.tool_choice
        if isinstance(choice, dict):
            if choice.get("type") not in ("function", "custom") or not isinstance(choice.get("name"), str):
                raise ValueError('tool_choice must be "none", "auto", "required" or {"type": "function", "name": ...}')
            if choice["name"] not in names:
                raise ValueError(f"tool_choice names the function {choice['name']!r}, which is not in tools")
        elif choice == "required" and not names:
            raise ValueError('tool_choice "required" needs tools')
        return self

    def function_tools(self) -> list[FunctionTool]:
        out = []
        for i, tool in enumerate(self.tools or []):
            if tool.get("type") not in ("function", "custom"):
                raise ValueError(f"tools.{i}: only function and custom tools are supported, got {tool.get('type')!r}")
            out.append(FunctionTool.model_validate(tool))
        return out

    def custom_tools(self) -> frozenset[str]:
        return frozenset(t.name for t in self.function_tools() if t.type == "custom")

    def tool_defs(self) -> list[dict[str, Any]]:
        return [t.chat_tool() for t in self.function_tools()]

    def chat_tool_choice(self) -> str | dict[str, Any] | None:  # a custom tool is a function for the models
        if isinstance(self.tool_choice, dict):
            return {"type": "function", "function": {"name": self.tool_choice["name"]}}
        return self.tool_choice

    def params(self) -> GenerationParams:
        return GenerationParams(max_tokens=self.max_output_tokens, temperature=self.temperature, top_p=self.top_p,
                                response_format=self._format)

    def text_body(self) -> dict[str, Any]:
        """The response object's `text`: the request's format, as it was sent."""
        return {"format": structured.to_wire(self._format, nested=False)}

    def input_messages(self) -> list[ChatMessage]:
        """This request's input as internal messages (without instructions and earlier turns)."""
        if isinstance(self.input, str):
            return [ChatMessage(role="user", content=self.input)]
        out: list[ChatMessage] = []
        for i, item in enumerate(self.input):
            _append(out, item, f"input.{i}")
        return out


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise OpenAIError(400, f"{where}: content must be a string or a list of text parts", param=where)
    parts = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") not in TEXT_PARTS or not isinstance(part.get("text"), str):
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise OpenAIError(400, f"{where}: only text content parts are supported, got {kind!r}", param=where)
        parts.append(part["text"])
    return "\n".join(parts)


def _append(out: list[ChatMessage], item: dict[str, Any], where: str) -> None:
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        if role not in ("user", "system", "developer", "assistant"):
            raise OpenAIError(400, f"{where}.role must be user, system, developer or assistant", param=where)
        out.append(ChatMessage(role=role, content=_text(item.get("content"), f"{where}.content")))
    elif kind in ("function_call", "custom_tool_call"):
        call_id, name = item.get("call_id"), item.get("name")
        if not isinstance(call_id, str) or not call_id or not isinstance(name, str) or not name:
            raise OpenAIError(400, f"{where}: a {kind} item needs call_id and name", param=where)
        if kind == "custom_tool_call":
            arguments = json.dumps({"input": str(item.get("input", ""))}, ensure_ascii=False)
        else:
            arguments = item.get("arguments", "")
            arguments = arguments if isinstance(arguments, str) else json.dumps(arguments)
        call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        last = out[-1] if out else None
        if last is not None and last.role == "assistant" and last.tool_calls is not None:
            last.tool_calls.append(call)  # parallel calls of one turn
        elif last is not None and last.role == "assistant" and not last.tool_calls:
            out[-1] = last.model_copy(update={"tool_calls": [call]})
        else:
            out.append(ChatMessage(role="assistant", content="", tool_calls=[call]))
    elif kind in ("function_call_output", "custom_tool_call_output"):
        call_id = item.get("call_id")
        if not isinstance(call_id, str) or not call_id:
            raise OpenAIError(400, f"{where}: a {kind} item needs call_id", param=where)
        out.append(ChatMessage(role="tool", tool_call_id=call_id, content=_text(item.get("output", ""),
                                                                                f"{where}.output")))
    elif kind not in IGNORED_ITEMS:
        raise OpenAIError(400, f"{where}: input items of type {kind!r} are not supported", param=where)


def parse_responses_request(data: Any) -> ResponsesRequest:
    return parse_object(data, ResponsesRequest)


def message_item(rid: str, text: str, status: str = "completed") -> dict[str, Any]:
    """The answer's text as a message item; `incomplete` when it was cut at max_output_tokens, as the response."""
    content = [] if status == "in_progress" else [{"type": "output_text", "text": text, "annotations": [],
                                                   "logprobs": []}]
    return {"type": "message", "id": f"msg_{rid}", "status": status, "role": "assistant", "content": content}


def cut_short(answer: Answer) -> bool:
    """The answer stopped at max_output_tokens: the response and its message are `incomplete`."""
    return answer.finish_reason == "length" and not answer.tool_calls


def reasoning_item(rid: str, text: str) -> dict[str, Any]:
    summary = [{"type": "summary_text", "text": text}] if text else []
    return {"type": "reasoning", "id": f"rs_{rid}", "summary": summary}


def function_call_items(answer: Answer, custom: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """The answer's tool calls: `function_call` items, or `custom_tool_call` items for custom tools."""
    items = []
    for i, call in enumerate(tool_calls(answer)):
        name, arguments = call["function"]["name"], call["function"]["arguments"]
        if name in custom:
            items.append({"type": "custom_tool_call", "id": f"ctc_{answer.response_id[:16]}_{i}",
                          "call_id": call["id"], "name": name, "input": custom_input(arguments),
                          "status": "completed"})
        else:
            items.append({"type": "function_call", "id": f"fc_{answer.response_id[:16]}_{i}", "call_id": call["id"],
                          "name": name, "arguments": arguments, "status": "completed"})
    return items


def custom_input(arguments: str) -> str:
    """A custom tool's free text from the model's arguments ({"input": "..."}; anything else as it is)."""
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        return arguments
    return value["input"] if isinstance(value, dict) and isinstance(value.get("input"), str) else arguments


def output_items(answer: Answer, custom: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """The response's output: the fleet's reasoning (as a reasoning summary), the text, the tool calls."""
    items = [reasoning_item(answer.response_id, answer.reasoning)] if answer.reasoning.strip() else []
    if answer.content:
        items.append(message_item(answer.response_id, answer.content, "incomplete" if cut_short(answer) else
                                  "completed"))
    return items + function_call_items(answer, custom)


def usage_body(answer: Answer) -> dict[str, Any]:
    usage = answer.usage
    return {"input_tokens": usage.prompt_tokens, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": usage.completion_tokens, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": usage.total_tokens}


def response_body(body: ResponsesRequest, rid: str, created: int, *, status: str = "completed",
                  output: list[dict[str, Any]] | None = None, answer: Answer | None = None,
                  error: OpenAIError | None = None) -> dict[str, Any]:
    """A `response` object; with an answer, its output, usage and status come from it."""
    incomplete = None
    if answer is not None:
        output = output if output is not None else output_items(answer, body.custom_tools())
        if cut_short(answer):
            status, incomplete = "incomplete", {"reason": "max_output_tokens"}
    return {
        "id": f"resp_{rid}", "object": "response", "created_at": created, "status": status,
        "error": {"code": error.code or "server_error", "message": error.message} if error else None,
        "incomplete_details": incomplete, "instructions": body.instructions,
        "max_output_tokens": body.max_output_tokens, "model": body.model, "output": output or [],
        "parallel_tool_calls": body.parallel_tool_calls if body.parallel_tool_calls is not None else True,
        "previous_response_id": body.previous_response_id, "reasoning": {"effort": None, "summary": None},
        "store": body.store, "temperature": body.temperature, "text": body.text_body(),
        "tool_choice": body.tool_choice or "auto", "tools": body.tools or [], "top_p": body.top_p,
        "truncation": "disabled", "usage": usage_body(answer) if answer is not None else None,
        "user": body.user, "metadata": body.metadata or {},
    }


def assistant_turn(answer: Answer) -> ChatMessage:
    """The answer as the assistant message a later response (previous_response_id) continues from."""
    return ChatMessage(role="assistant", content=answer.content, tool_calls=tool_calls(answer) or None)
