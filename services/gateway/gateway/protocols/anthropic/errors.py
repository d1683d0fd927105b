"""The Anthropic error envelope, {"type": "error", "error": {"type", "message"}}: every error of the Messages
protocol (an OpenAIError raised anywhere on the path, moe_core.runtime.openai_error) rendered in Anthropic's types."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from moe_core.runtime.observability.metrics import GATEWAY_REQUESTS
from moe_core.runtime.openai_error import OpenAIError

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
               503: "overloaded_error", 504: "timeout_error"}


def error_body(exc: OpenAIError) -> dict[str, Any]:
    kind = ERROR_TYPES.get(exc.status, "api_error" if exc.status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": exc.message}}


def error_response(exc: OpenAIError) -> JSONResponse:
    GATEWAY_REQUESTS.labels("messages", "-", str(exc.status)).inc()
    return JSONResponse(error_body(exc), status_code=exc.status, headers=exc.headers)
