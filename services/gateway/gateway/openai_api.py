"""OpenAI wire shapes: the request model, response and chunk objects, and the error envelope."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from moe_core.contracts import Answer, ChatMessage, GenerationParams, Usage

MODES: dict[str, str] = {
    "moe-orchestrator": "Full pipeline: planner, experts, judge",
}


class OpenAIError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type_, code, param

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class InMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None

    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        parts = []
        for part in self.content:
            if part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise OpenAIError(400, "only text content parts are supported", param="messages")
            parts.append(part["text"])
        return "\n".join(parts)


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[InMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=32768)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=32768)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: str | list[str] | None = None
    n: int | None = Field(default=None, ge=1, le=1)
    user: str | None = None

    def chat_messages(self) -> list[ChatMessage]:
        return [ChatMessage(role=m.role, content=m.text(), name=m.name) for m in self.messages]

    def params(self) -> GenerationParams:
        stop = [self.stop] if isinstance(self.stop, str) else self.stop
        return GenerationParams(max_tokens=self.max_completion_tokens or self.max_tokens,
                                temperature=self.temperature, top_p=self.top_p, stop=stop)

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


def parse_request(data: Any) -> ChatCompletionRequest:
    if not isinstance(data, dict):
        raise OpenAIError(400, "the request body must be a JSON object")
    try:
        return ChatCompletionRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise OpenAIError(400, f"invalid request: {param}: {first['msg']}", param=param,
                          code="invalid_value") from exc


def usage_body(usage: Usage) -> dict[str, int]:
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens}


def finish_reason(answer: Answer) -> str:
    return "length" if answer.finish_reason == "length" else "stop"


def metadata_body(answer: Answer) -> dict[str, Any]:
    return {
        "response_id": answer.response_id,
        "cache_hit": answer.cache_hit,
        "experts_used": answer.experts_used,
        "sources": [s.model_dump(exclude_none=True) for s in answer.sources],
        "missing": answer.missing,
    }


def completion_body(completion_id: str, created: int, mode: str, answer: Answer) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": mode,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": answer.content, "refusal": None},
            "logprobs": None,
            "finish_reason": finish_reason(answer),
        }],
        "usage": usage_body(answer.usage),
        "system_fingerprint": None,
        "metadata": metadata_body(answer),
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


def answer_error(answer: Answer) -> OpenAIError | None:
    if answer.error is None:
        return None
    if answer.error.code == "deadline_exceeded":
        return OpenAIError(504, answer.error.message, "timeout_error", "deadline_exceeded")
    return OpenAIError(503, answer.error.message, "server_error", answer.error.code)


def deadline_error() -> OpenAIError:
    return OpenAIError(504, "the request did not complete before its deadline", "timeout_error",
                       "deadline_exceeded")
