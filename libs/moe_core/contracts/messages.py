"""Message payloads exchanged between the fleet's stages."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from moe_core.contracts.envelope import Envelope, utcnow

Confidence = Literal["high", "medium", "low"]
Role = Literal["system", "user", "assistant", "tool", "developer"]
TaskKind = Literal["expert"]
FinishReason = Literal["stop", "length", "deadline", "error"]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Role
    content: str = ""
    name: str | None = None


class GenerationParams(BaseModel):
    max_tokens: int | None = Field(default=None, ge=1, le=32768)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: list[str] | None = None


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


class Source(BaseModel):
    kind: str = Field(description="expert | web | graph | tool | cache")
    ref: str
    title: str | None = None


class ChatRequest(Envelope):
    """gateway -> planner: one client request."""

    mode: str = Field(description="The model id the client asked for, e.g. moe-orchestrator")
    messages: list[ChatMessage] = Field(min_length=1)
    params: GenerationParams = Field(default_factory=GenerationParams)
    stream: bool = False
    user: str | None = None


class PlannedTask(BaseModel):
    task_id: str = Field(min_length=1, max_length=64)
    kind: TaskKind = "expert"
    category: str
    instruction: str = Field(min_length=1)


class Plan(Envelope):
    """planner -> merger: what the merger must wait for."""

    mode: str
    question: str
    tasks: list[PlannedTask] = Field(min_length=1)
    source: Literal["llm", "fallback"] = "llm"
    planner_model: str | None = None
    usage: Usage = Field(default_factory=Usage)
    params: GenerationParams = Field(default_factory=GenerationParams)


class ExpertTask(Envelope):
    """planner -> expert-worker: one task of a plan."""

    task_id: str
    category: str
    instruction: str
    question: str
    history: list[ChatMessage] = Field(default_factory=list)
    params: GenerationParams = Field(default_factory=GenerationParams)


class TaskResult(Envelope):
    """A worker's result for one task -> merger."""

    task_id: str
    kind: TaskKind = "expert"
    category: str
    content: str = ""
    confidence: Confidence = "medium"
    model: str | None = None
    server: str | None = None
    usage: Usage = Field(default_factory=Usage)
    error: str | None = None
    duration_ms: float = 0.0


class Progress(Envelope):
    """Any stage -> gateway: what is happening now (streamed to clients)."""

    stage: str
    event: str
    detail: str = ""
    task_id: str | None = None


class ErrorInfo(BaseModel):
    code: str
    message: str


class Answer(Envelope):
    """merger -> gateway: the final answer of a request."""

    mode: str
    content: str = ""
    finish_reason: FinishReason = "stop"
    usage: Usage = Field(default_factory=Usage)
    model_calls: int = 0
    experts_used: list[str] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list, description="Categories not answered in time")
    cache_hit: bool = False
    error: ErrorInfo | None = None


class DeadLetter(BaseModel):
    """A message that could not be processed, with the reason. Not an envelope: it may not parse."""

    response_id: str | None = None
    source_topic: str
    partition: int | None = None
    offset: int | None = None
    consumer: str
    reason: str
    error_type: str
    payload: str = Field(description="The original bytes, decoded as UTF-8 with replacement")
    headers: dict[str, str] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)


MESSAGE_MODELS: dict[str, type[BaseModel]] = {
    "ChatRequest": ChatRequest,
    "Plan": Plan,
    "ExpertTask": ExpertTask,
    "TaskResult": TaskResult,
    "Progress": Progress,
    "Answer": Answer,
    "DeadLetter": DeadLetter,
}
