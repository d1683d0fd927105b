"""The errors of a request's outcome, whatever its protocol: an Answer that carries an error, a deadline that
passed. OpenAIErrors (moe_core.openai_error); each protocol renders them in its own envelope."""

from __future__ import annotations

from moe_core.contracts import Answer
from moe_core.openai_error import OpenAIError


def answer_error(answer: Answer) -> OpenAIError | None:
    if answer.error is None:
        return None
    if answer.error.code == "deadline_exceeded":
        return OpenAIError(504, answer.error.message, "timeout_error", "deadline_exceeded")
    return OpenAIError(503, answer.error.message, "server_error", answer.error.code)


def deadline_error() -> OpenAIError:
    return OpenAIError(504, "the request did not complete before its deadline", "timeout_error",
                       "deadline_exceeded")
