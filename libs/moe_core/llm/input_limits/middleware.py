"""The guard in front of the edge and the control plane: every request body bounded while it is read, its
JSON nesting bounded before it is decoded, its lists and strings bounded after, and its text Unicode (UTF-8
bytes, no lone surrogate in a string or key; the same for the headers read as text); and a model request
that would cause a message larger than the broker accepts refused at the door. Errors in the API's own
envelope (`envelope`: the edge gives Anthropic's under /v1/messages; OpenAI's by default), never a 500.

Pure ASGI (not BaseHTTPMiddleware): the buffered body is replayed to the route, then `receive` is the
server's again, so a client's disconnect still reaches streams and cancellation."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from moe_core.llm.input_limits.json_shape import MODEL_ROUTES, EdgeError, check_depth, check_shape, image_payloads
from moe_core.llm.input_limits.settings import EdgeSettings
from moe_core.llm.input_limits.text import body_not_utf8, check_form_charset, check_headers
from moe_core.runtime.observability.metrics import GATEWAY_REQUESTS
from moe_core.runtime.openai_error import OpenAIError

_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FORMS = (b"multipart/form-data", b"application/x-www-form-urlencoded")  # Starlette decodes these itself


Envelope = Callable[[str, OpenAIError], dict[str, Any]]  # (path, error) -> the error body of that path's API


def openai_envelope(_: str, error: OpenAIError) -> dict[str, Any]:
    return error.body()


class InputLimits:
    def __init__(self, app: ASGIApp, limits: EdgeSettings, envelope: Envelope = openai_envelope) -> None:
        self.app = app
        self.limits = limits
        self.envelope = envelope

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if "\x00" in path or b"%00" in scope.get("query_string", b""):  # no store takes a NUL (Postgres)
            await self._refuse(EdgeError(400, "the path or query holds a NUL character"), path)(scope, receive, send)
            return
        try:
            check_headers(scope["headers"])
        except EdgeError as exc:
            await self._refuse(exc, path)(scope, receive, send)
            return
        if scope["method"] not in _WITH_BODY:
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read(scope, receive)
            content_type = _content_type(scope)
            if body and _reads_forms(path) and content_type.lower().startswith(_FORMS):
                check_form_charset(content_type)  # an upload (memory documents), a console form: not JSON
            elif body:  # JSON, whatever the Content-Type says (the model routes decode any body as JSON)
                self._check(path, body)
        except EdgeError as exc:
            await self._refuse(exc, path)(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the server's own events (http.disconnect)

        await self.app(scope, replay, send)

    async def _read(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.limits.max_body_bytes
        too_large = EdgeError(413, f"the request body is larger than {limit} bytes (MOE_MAX_BODY_BYTES)",
                              code="request_too_large")
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                raise too_large
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _refuse(self, exc: EdgeError, path: str) -> JSONResponse:
        GATEWAY_REQUESTS.labels("edge", "-", str(exc.status)).inc()
        error = OpenAIError(exc.status, exc.message, code=exc.code, param=exc.param)
        return JSONResponse(self.envelope(path, error), status_code=exc.status)

    def _check(self, path: str, body: bytes) -> None:
        check_depth(body, self.limits.max_json_depth)
        try:
            data = json.loads(body)  # bytes: UTF-8 (or -16/-32), lone surrogates kept (surrogatepass): _walk's
        except UnicodeDecodeError as exc:
            raise body_not_utf8(exc) from None
        except (ValueError, RecursionError):
            data = None  # the route answers ill-formed JSON in its own words
        if path in MODEL_ROUTES and not path.endswith("/count_tokens"):
            carried = len(body) - sum(image_payloads(data).values())  # images go by reference (.images)
            need = carried * self.limits.fanout_copies
            if need > self.limits.broker_max_message_bytes:
                raise EdgeError(413, f"this request ({len(body)} bytes) would put messages of about {need} "
                                     f"bytes on the fleet's bus, which carries at most "
                                     f"{self.limits.broker_max_message_bytes} (MOE_BROKER_MAX_MESSAGE_BYTES): "
                                     "shorten the conversation", code="request_too_large")
        if data is not None:
            check_shape(data, path, self.limits)


def _content_type(scope: Scope) -> bytes:
    return next((value for name, value in scope["headers"] if name == b"content-type"), b"")


def _reads_forms(path: str) -> bool:
    return path == "/v1/memory/documents" or path == "/console" or path.startswith("/console/")
