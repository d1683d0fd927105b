"""OpenAI wire shapes: the request model, response and chunk objects (the error envelope:
moe_core.runtime.openai_error)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StrictBool, field_validator, model_validator

from gateway.tools import TOOL_NAME, tool_calls
from moe_core.contracts import Answer, ChatMessage, GenerationParams, ResponseFormat, Source, Usage
from moe_core.llm import structured
from moe_core.llm.input_limits.images import ImageInput, openai_part
from moe_core.llm.modes import MODES as MODE_CATALOGUE
from moe_core.runtime.openai_error import OpenAIError, parse_object

# Every model id the gateway accepts (the shared catalogue; planner, experts and merger give each its behaviour).
MODES: dict[str, str] = {mode.id: mode.description for mode in MODE_CATALOGUE.values()}
ReasoningFormat = Literal["reasoning_content", "think", "none"]
REASONING_FORMATS: tuple[str, ...] = ("reasoning_content", "think", "none")
# Refused rather than ignored: a client relying on them would get no logprobs without a word.
NO_LOGPROBS = "logprobs are not available: the answer is merged from several models' outputs"


class FunctionCall(BaseModel):
    name: str = Field(pattern=TOOL_NAME)
    arguments: str = ""


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=200)
    type: Literal["function"] = "function"
    function: FunctionCall


class FunctionDef(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=TOOL_NAME)
    description: str | None = None
    parameters: dict[str, Any] | None = None


class ToolDef(BaseModel):
    type: Literal["function"] = "function"
    function: FunctionDef


class InMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _tool_fields(self) -> InMessage:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs tool_call_id")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages carry tool_calls")
        return self

    def text(self, images: list[ImageInput] | None = None, where: str = "messages", index: int = 0) -> str:
        """The message's text; its image_url parts go to `images` (a user message's, where images are taken)."""
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        parts = []
        for j, part in enumerate(self.content):
            if part.get("type") == "image_url" and images is not None and self.role == "user":
                images.append(openai_part(part, f"{where}.content.{j}"))
                images[-1].message = index
                continue
            if part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise OpenAIError(400, "only text content parts are supported" + (" (and images in user messages)"
                                  if images is not None else ""), param="messages")
            parts.append(part["text"])
        return "\n".join(parts)

    def chat_message(self, images: list[ImageInput] | None = None, where: str = "messages",
                     index: int = 0) -> ChatMessage:
        calls = [c.model_dump() for c in self.tool_calls] if self.tool_calls else None
        return ChatMessage(role=self.role, content=self.text(images, where, index), name=self.name,
                           tool_calls=calls, tool_call_id=self.tool_call_id)


class StreamOptions(BaseModel):
    include_usage: StrictBool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[InMessage] = Field(min_length=1)
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=32768)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=32768)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: str | list[str] | None = None
    n: int | None = Field(default=None, ge=1, le=1)
    user: str | None = None
    tools: list[ToolDef] | None = Field(default=None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: StrictBool | None = None
    metadata: dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    logprobs: StrictBool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    _format: ResponseFormat | None = PrivateAttr(default=None)  # response_format read (moe_core.llm.structured)

    @field_validator("logprobs", "top_logprobs")
    @classmethod
    def _no_logprobs(cls, value: bool | int | None) -> bool | int | None:
        if value:
            raise ValueError(NO_LOGPROBS)
        return value

    @model_validator(mode="after")
    def _tool_choice(self) -> ChatCompletionRequest:
        choice = self.tool_choice
        if isinstance(choice, dict):
            name = (choice.get("function") or {}).get("name") if choice.get("type") == "function" else None
            if not isinstance(name, str):
                raise ValueError('tool_choice must be "none", "auto", "required" or {"type": "function", '
                                 '"function": {"name": ...}}')
            if name not in {t.function.name for t in self.tools or []}:
                raise ValueError(f"tool_choice names the function {name!r}, which is not in tools")
        elif choice == "required" and not self.tools:
            raise ValueError('tool_choice "required" needs tools')
        fmt = (self.metadata or {}).get("reasoning_format")
        if fmt is not None and fmt not in REASONING_FORMATS:
            raise ValueError(f"metadata.reasoning_format must be one of {', '.join(REASONING_FORMATS)}")
        self._format = structured.from_wire(self.response_format, "response_format")  # a bad one: its 400
        return self

    def chat_messages(self, images: list[ImageInput] | None = None) -> list[ChatMessage]:
        """The conversation; with `images`, user messages' image_url parts are collected there (else a 400)."""
        return [m.chat_message(images, f"messages.{i}", i) for i, m in enumerate(self.messages)]

    def params(self) -> GenerationParams:
        stop = [self.stop] if isinstance(self.stop, str) else self.stop
        return GenerationParams(max_tokens=self.max_completion_tokens or self.max_tokens,
                                temperature=self.temperature, top_p=self.top_p, stop=stop,
                                response_format=self._format)

    def tool_defs(self) -> list[dict[str, Any]]:
        return [t.model_dump(exclude_none=True) for t in self.tools or []]

    def chat_tool_choice(self) -> str | dict[str, Any] | None:
        return self.tool_choice

    def reasoning_format(self, default: ReasoningFormat) -> ReasoningFormat:
        """The request's, else `default`; never `think` for structured output (its <think> block would stand in
        front of the JSON in `content`): the reasoning then goes in `reasoning_content`."""
        fmt = (self.metadata or {}).get("reasoning_format")
        chosen: ReasoningFormat = fmt if fmt in REASONING_FORMATS else default
        return "reasoning_content" if chosen == "think" and self._format is not None else chosen

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


def parse_request(data: Any) -> ChatCompletionRequest:
    return parse_object(data, ChatCompletionRequest)


def usage_body(usage: Usage) -> dict[str, int]:
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens}


def finish_reason(answer: Answer) -> str:
    if answer.tool_calls:
        return "tool_calls"
    if answer.finish_reason == "content_filter":  # a guardrail's refusal (moe_core.llm.guardrails)
        return "content_filter"
    return "length" if answer.finish_reason == "length" else "stop"


# The fleet's own fields go out under `moe`, a field no protocol defines: OpenAI types a completion's `metadata` as
# strings only (its SDKs warn on, or refuse, lists and booleans there). The original's `metadata.sources` entries are
# {"type": "neo4j", "label": <entity>}: each of `moe.sources` carries them beside the fleet's own (kind, ref, title,
# url). A knowledge-graph source is the original's "neo4j"; the others keep
# their kind, with the precision tools under the original's name for them (MCP).
SEED_SOURCE_TYPES = {"graph": "neo4j", "graph_context": "neo4j", "tool": "mcp"}


def source_body(source: Source) -> dict[str, Any]:
    """One `moe.sources` entry: the fleet's fields and the original's `type` and `label`."""
    return {**source.model_dump(exclude_none=True), "type": SEED_SOURCE_TYPES.get(source.kind, source.kind),
            "label": source.title or source.ref}


def moe_body(answer: Answer) -> dict[str, Any]:
    """The fleet's own fields of an answer: the completion's (and the final chunk's) `moe`."""
    return {
        "response_id": answer.response_id,
        "cache_hit": answer.cache_hit,
        "experts_used": answer.experts_used,
        "sources": [source_body(s) for s in answer.sources],
        "missing": answer.missing,
        "template": answer.template,  # the expert template the answer's models came from (None: global)
    }


def think_block(reasoning: str) -> str:
    return f"<think>\n{reasoning.strip()}\n</think>\n\n" if reasoning.strip() else ""


def completion_body(completion_id: str, created: int, mode: str, answer: Answer,
                    reasoning: ReasoningFormat = "reasoning_content") -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.content, "refusal": None}
    if reasoning == "think":
        message["content"] = think_block(answer.reasoning) + answer.content
    elif reasoning == "reasoning_content" and answer.reasoning:
        message["reasoning_content"] = answer.reasoning
    if answer.tool_calls:
        message["tool_calls"] = tool_calls(answer)
        message["content"] = message["content"] or None
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": mode,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason(answer)}],
        "usage": usage_body(answer.usage),
        "system_fingerprint": None,
        "moe": moe_body(answer),
    }


def chunk_body(completion_id: str, created: int, mode: str, delta: dict[str, Any],
               finish: str | None = None) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": mode,
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
