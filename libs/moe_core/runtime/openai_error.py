"""The OpenAI error envelope, `{"error": {"message", "type", "param", "code"}}`: the error of the edge's OpenAI
and Responses protocols and of the control plane's API. The Anthropic protocol renders the same errors in
its own envelope (gateway.protocols.anthropic.errors). Also the JSON body parsing whose failures are 400s in it, and
the handlers that render every error of an app in an envelope."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

RETRY_AFTER_S = 5  # the Retry-After of a 503 (a store or the broker is unavailable)
# Parts of a validation error's location that name pydantic's union members, not the client's fields
# (`input.str`, `messages.0.UserMessage.content`, `function-after[…]`): a field is snake_case, a member is not.
_MEMBER = re.compile(r"^([A-Z]|(str|int|float|bool|bytes|none|list|dict|set|tuple|literal|function-\w+|tagged-union"
                     r"|json-or-python|is-instance|chain|lax-or-strict)(\[.*)?$)")
ModelT = TypeVar("ModelT", bound=BaseModel)


class OpenAIError(Exception):
    """An error of the API; rendered in the OpenAI envelope (the Anthropic surface converts it)."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        if code is None and status == 400 and type_ == "invalid_request_error":
            code = "invalid_value"  # every 400 names its reason (docs/api.md's errors table)
        self.status, self.message, self.type, self.code, self.param = status, message, type_, code, param
        # Something the request needs is unavailable for now: tell the client when to try again.
        self.headers: dict[str, str] | None = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def parse_json_body(raw: bytes, model: type[ModelT]) -> ModelT:
    """A JSON object body validated by `model`; any problem is a 400 in the OpenAI error envelope."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise OpenAIError(400, "the request body is not valid JSON") from None
    return parse_object(data, model)


def parse_object(data: Any, model: type[ModelT]) -> ModelT:
    if not isinstance(data, dict):
        raise OpenAIError(400, "the request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise field_error(exc.errors()[0]) from None


def field_error(first: Mapping[str, Any]) -> OpenAIError:
    """A validation error as the client sees it: the field by its own path (no union member names, no `body`),
    the reason without pydantic's "Value error, " prefix."""
    if first["type"] == "json_invalid":
        return OpenAIError(400, "the request body is not valid JSON", code="invalid_value")
    param = ".".join(str(p) for p in first["loc"] if p != "body" and not _MEMBER.match(str(p))) or None
    message = str(first["msg"]).removeprefix("Value error, ")
    return OpenAIError(400, f"invalid request: {param or 'body'}: {message}", param=param, code="invalid_value")


Render = Callable[[Request, OpenAIError], JSONResponse]


def openai_response(_: Request, error: OpenAIError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


def install_error_handlers(app: FastAPI, render: Render = openai_response,
                           on_error: Callable[[Request, OpenAIError], None] | None = None) -> None:
    """Every error of the app in an API envelope (`render`, the OpenAI one by default), never a stack trace:
    OpenAIErrors, Starlette's HTTP errors (404, 405) and FastAPI's validation errors (the field that is wrong,
    as parse_object names it)."""

    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, OpenAIError)
        if on_error is not None:
            on_error(request, exc)
        return render(request, exc)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = "not_found" if exc.status_code == 404 else None
        error = OpenAIError(exc.status_code, str(exc.detail), code=code)
        error.headers = None
        return render(request, error)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0]  # e.g. an admin API body: the field that is wrong, as parse_object does
        if tuple(first["loc"]) == ("body",) and "json" not in request.headers.get("content-type", ""):
            return render(request, OpenAIError(  # curl -d sends a form's content type; FastAPI reads JSON only
                400, "the request body must be JSON, sent with Content-Type: application/json (curl: -H "
                     "'Content-Type: application/json')", code="invalid_value"))
        return render(request, field_error(first))

    app.add_exception_handler(OpenAIError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
