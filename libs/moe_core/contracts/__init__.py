"""The only source of message shapes in the fleet."""

from moe_core.contracts.envelope import Envelope, TraceContext, deadline_in, utcnow
from moe_core.contracts.experts import EXPERT_CATEGORIES
from moe_core.contracts.messages import (
    MESSAGE_MODELS,
    Answer,
    ChatMessage,
    ChatRequest,
    Confidence,
    DeadLetter,
    ErrorInfo,
    ExpertTask,
    GenerationParams,
    Plan,
    PlannedTask,
    Progress,
    Source,
    TaskResult,
    Usage,
)
from moe_core.contracts.topics import TOPIC_MESSAGES, Topics

__all__ = [
    "EXPERT_CATEGORIES",
    "MESSAGE_MODELS",
    "TOPIC_MESSAGES",
    "Answer",
    "ChatMessage",
    "ChatRequest",
    "Confidence",
    "DeadLetter",
    "Envelope",
    "ErrorInfo",
    "ExpertTask",
    "GenerationParams",
    "Plan",
    "PlannedTask",
    "Progress",
    "Source",
    "TaskResult",
    "Topics",
    "TraceContext",
    "Usage",
    "deadline_in",
    "utcnow",
]
