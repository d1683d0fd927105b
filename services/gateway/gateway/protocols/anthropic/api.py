"""Anthropic Messages wire shapes: the request model and its mapping to the internal (OpenAI-form) chat,
the message body and stop reasons (its error envelope: gateway.protocols.anthropic.errors)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from gateway.tools import TOOL_NAME, openai_call, openai_tool, openai_tool_choice, tool_calls, tool_use_block
from moe_core.contracts import Answer, ChatMessage, GenerationParams
from moe_core.llm.input_limits.images import ImageInput, anthropic_block
from moe_core.runtime.openai_error import OpenAIError, parse_object

MAX_TOKENS_CAP = 32768  # the fleet's own limit per model call; larger client budgets are capped
IGNORED_BLOCKS = {"thinking", "redacted_thinking"}  # earlier turns' thinking is not sent to the experts
REMINDER = ("<system-reminder>", "</system-reminder>")  # harness context in a user's turn (is_reminder)


class AnthropicTool(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=TOOL_NAME)
    description: str | None = None
    input_schema: dict[str, Any]
    type: Literal["custom"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _client_tools_only(cls, value: Any) -> Any:
        kind = value.get("type") if isinstance(value, dict) else None
        if kind not in (None, "custom"):  # e.g. web_search_20250305: run by Anthropic's servers, not here
            raise ValueError(f"server tools ({kind}) are not supported: only client tools with an input_schema")
        return value


class AnthropicMessage(BaseModel):
    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]


class MessagesRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[AnthropicMessage] = Field(min_length=1)
    max_tokens: int = Field(ge=1)
    system: str | list[dict[str, Any]] | None = None
    stream: StrictBool = False
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    stop_sequences: list[str] | None = None
    metadata: dict[str, Any] | None = None
    tools: list[AnthropicTool] | None = Field(default=None, max_length=128)
    tool_choice: dict[str, Any] | None = None
    thinking: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _tool_choice(self) -> MessagesRequest:
        choice = self.tool_choice
        if choice is None:
            return self
        kind = choice.get("type")
        if kind not in ("auto", "any", "tool", "none"):
            raise ValueError("tool_choice.type must be one of auto, any, tool, none")
        if kind == "tool" and choice.get("name") not in {t.name for t in self.tools or []}:
            raise ValueError("tool_choice.name must name one of the tools")
        if kind in ("any", "tool") and not self.tools:
            raise ValueError(f"tool_choice {kind} needs tools")
        return self

    def chat_messages(self, images: list[ImageInput] | None = None) -> list[ChatMessage]:
        """The conversation in the internal form. Context an agent wraps into the user's turn (Claude Code's
        `<system-reminder>` text blocks: skills, the date, CLAUDE.md) joins the system prompt, so the user's
        message is their question and the planner sees that, not pages of harness context. With `images`,
        a user message's image blocks are collected there (each knows its internal message), else a 400."""
        reminders: list[str] = []
        out: list[ChatMessage] = []
        found: list[ImageInput] = []
        for i, message in enumerate(self.messages):
            start = len(found)
            converted = _convert(message, f"messages.{i}.content", reminders, found if images is not None else None)
            for item in found[start:]:  # the user message comes after the tool results it carries
                item.message = len(out) + len(converted) - 1
            out += converted
        system = "\n".join(t for t in (system_text(self.system), *dict.fromkeys(reminders)) if t.strip())
        for item in found:  # (found stays empty without `images`)
            item.message += 1 if system else 0
        if images is not None:
            images += found
        return ([ChatMessage(role="system", content=system)] if system else []) + out

    def params(self) -> GenerationParams:
        return GenerationParams(max_tokens=min(self.max_tokens or MAX_TOKENS_CAP, MAX_TOKENS_CAP),
                                temperature=self.temperature, top_p=self.top_p, stop=self.stop_sequences or None)

    def tool_defs(self) -> list[dict[str, Any]]:
        return [openai_tool(t.name, t.description, t.input_schema) for t in self.tools or []]

    def openai_tool_choice(self) -> str | dict[str, Any] | None:
        return openai_tool_choice(self.tool_choice)

    chat_tool_choice = openai_tool_choice  # what the chat flow calls (gateway.chat.ProtocolRequest)

    @property
    def user(self) -> str | None:
        user = (self.metadata or {}).get("user_id")
        return str(user) if user is not None else None

    def wants_thinking(self, default: bool) -> bool:
        kind = (self.thinking or {}).get("type")
        return default if kind is None else kind != "disabled"


class CountTokensRequest(MessagesRequest):
    """POST /v1/messages/count_tokens: a Messages request without max_tokens (and nothing generated)."""

    max_tokens: int | None = Field(default=None, ge=1)  # type: ignore[assignment]


def system_text(system: str | list[dict[str, Any]] | None) -> str:
    if system is None or isinstance(system, str):
        return system or ""
    return "\n".join(_text_of(block, "system") for block in system)


def _text_of(block: dict[str, Any], where: str) -> str:
    if block.get("type") != "text" or not isinstance(block.get("text"), str):
        raise OpenAIError(400, f"{where}: only text blocks are supported here, got {block.get('type')!r}",
                          param=where)
    return str(block["text"])


def _tool_result_text(block: dict[str, Any], where: str) -> str:
    content = block.get("content")
    if isinstance(content, list):
        text = "\n".join(_text_of(part, where) for part in content)
    else:
        text = content if isinstance(content, str) else ""
    return f"[tool error] {text}" if block.get("is_error") else text


def is_reminder(text: str) -> bool:
    """A text block that is wholly harness context (`<system-reminder>…</system-reminder>`)."""
    body = text.strip()
    return body.startswith(REMINDER[0]) and body.endswith(REMINDER[1]) and body.count(REMINDER[0]) == 1


def _convert(message: AnthropicMessage, where: str, reminders: list[str],
             images: list[ImageInput] | None = None) -> list[ChatMessage]:
    """One Anthropic message -> internal messages: tool_result blocks become `tool` messages (first),
    tool_use blocks become the assistant's tool_calls, text blocks are joined; a user's reminder blocks
    go to `reminders`, its image blocks to `images` (when images are taken)."""
    if isinstance(message.content, str):
        return [ChatMessage(role=message.role, content=message.content)]
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    results: list[ChatMessage] = []
    first_image = len(images) if images is not None else 0
    for j, block in enumerate(message.content):
        kind = block.get("type")
        if kind == "image" and message.role == "user" and images is not None:
            images.append(anthropic_block(block, f"{where}.{j}"))
        elif kind == "text":
            text = _text_of(block, where)
            if message.role == "user" and is_reminder(text):
                reminders.append(text.strip())
            else:
                texts.append(text)
        elif kind == "tool_use" and message.role == "assistant":
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                raise OpenAIError(400, f"{where}: a tool_use block needs id and name", param=where)
            value = block.get("input")
            calls.append(openai_call(block["id"], block["name"], value if isinstance(value, dict) else {}))
        elif kind == "tool_result" and message.role == "user":
            if not isinstance(block.get("tool_use_id"), str):
                raise OpenAIError(400, f"{where}: a tool_result block needs tool_use_id", param=where)
            results.append(ChatMessage(role="tool", tool_call_id=block["tool_use_id"],
                                       content=_tool_result_text(block, where)))
        elif kind not in IGNORED_BLOCKS:
            raise OpenAIError(400, f"{where}: content blocks of type {kind!r} are not supported in a "
                                   f"{message.role} message", param=where)
    text = "\n".join(texts)
    if message.role == "assistant":
        return [ChatMessage(role="assistant", content=text, tool_calls=calls or None)]
    user = text or not results or (images is not None and len(images) > first_image)
    return results + ([ChatMessage(role="user", content=text)] if user else [])


def parse_messages_request(data: Any, model: type[MessagesRequest] = MessagesRequest) -> MessagesRequest:
    return parse_object(data, model)


def stop_reason(answer: Answer, stop_sequence: str | None = None) -> str:
    if answer.tool_calls:
        return "tool_use"
    if stop_sequence is not None:
        return "stop_sequence"
    if answer.finish_reason == "content_filter":  # a guardrail's refusal (moe_core.llm.guardrails)
        return "refusal"
    return "max_tokens" if answer.finish_reason == "length" else "end_turn"


def usage_body(answer: Answer) -> dict[str, int]:
    return {"input_tokens": answer.usage.prompt_tokens, "output_tokens": answer.usage.completion_tokens}


def message_body(mode: str, answer: Answer, thinking: bool, stop_sequence: str | None = None) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if thinking and answer.reasoning:
        content.append({"type": "thinking", "thinking": answer.reasoning, "signature": ""})
    if answer.content:
        content.append({"type": "text", "text": answer.content})
    content += [tool_use_block(call) for call in tool_calls(answer)]
    return {
        "id": f"msg_{answer.response_id}",
        "type": "message",
        "role": "assistant",
        "model": mode,
        "content": content,
        "stop_reason": stop_reason(answer, stop_sequence),
        "stop_sequence": stop_sequence if not answer.tool_calls else None,
        "usage": usage_body(answer),
    }
