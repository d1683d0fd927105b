"""Scripted inference server: OpenAI-compatible + Ollama API test double.

In-process:   ``app = create_app(script)``; ``httpx.AsyncClient(transport=httpx.ASGITransport(app))``;
              state (script, calls, faults) at ``app.state.scripted`` (a ``ScriptState``).
Thread:       ``base_url, stop = start_server_thread(script)`` ... ``stop()``.
Subprocess:   ``python -m tests.support.scripted_llm --port 0 --host 127.0.0.1 [--script f.json]``
              prints ``LISTENING http://127.0.0.1:<port>`` once it accepts connections.

Script format, token counting and truncation rules: see ``tests/support/scripted_core.py``.
Control endpoints: ``PUT /_script``, ``GET|DELETE /_calls``, ``POST /_fail {"status","times"}``,
``POST /_down``, ``POST /_up``. They keep working while the server is "down".
``state.set_loaded([...])`` limits what /api/ps and /v1/models report as loaded (default: every model). An
Ollama call (``/api/chat``) loads its model, and one with ``keep_alive`` 0 unloads it once answered, as Ollama does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.support import uvicorn_thread
from tests.support.scripted_core import (
    Reply,
    ScriptState,
    completion_tokens,
    error_response,
    model_entry,
    now_iso,
    ollama_frames,
    openai_frames,
    openai_tool_calls,
    openai_tool_frames,
    prompt_tokens,
    truncate,
)


async def _stream(request: Request, call: dict[str, Any], frames: list[bytes], delay_s: float):
    """Emit frames over time; stops and marks the call cancelled if the client goes away."""
    state: ScriptState = request.app.state.scripted
    done = False
    try:
        for i, frame in enumerate(frames):
            if i and delay_s:
                await asyncio.sleep(delay_s)
                if await request.is_disconnected():
                    return
            yield frame
        done = True
        state.update(call, completed=True)
    finally:
        if not done:
            state.update(call, cancelled=True)


async def _chat(request: Request, api: str) -> Response:
    state: ScriptState = request.app.state.scripted
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return error_response(api, 400, "request body must be a JSON object")
    model = body.get("model")
    messages = body.get("messages") or []
    options = body.get("options") or {}
    if api == "openai":
        stream = bool(body.get("stream", False))
        max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
        fmt_key, fmt, temperature = "response_format", body.get("response_format"), body.get("temperature")
    else:
        stream = bool(body.get("stream", True))  # Ollama streams unless told otherwise
        max_tokens = options.get("num_predict")
        fmt_key, fmt, temperature = "format", body.get("format"), options.get("temperature")
    call = state.record({"api": api, "model": model, "messages": messages, "stream": stream,
                         "max_tokens": max_tokens, fmt_key: fmt, "temperature": temperature, "body": body})

    failure = state.take_failure()
    if failure is not None:
        state.update(call, status=failure)
        return error_response(api, failure, f"scripted failure (status {failure})", code="scripted_failure")
    if not state.has_model(model):
        state.update(call, status=404)
        msg = f"model '{model}' not found" if api == "ollama" else f"The model `{model}` does not exist"
        return error_response(api, 404, msg, code="model_not_found", param="model")

    reply: Reply = state.match(model, messages)
    state.update(call, rule=reply.rule)
    if reply.delay_ms:
        await asyncio.sleep(reply.delay_ms / 1000)
    if reply.status != 200:
        state.update(call, status=reply.status)
        msg = f"scripted error (status {reply.status})"
        return error_response(api, reply.status, msg, code="scripted_error")
    if reply.context_tokens and (asked := prompt_tokens(messages)) > reply.context_tokens:  # as llama.cpp says it
        state.update(call, status=400)
        return error_response(api, 400, f"request ({asked} tokens) exceeds the available context size "
                                        f"({reply.context_tokens} tokens), try increasing it",
                              code="exceed_context_size_error")

    if api == "ollama":  # Ollama's memory follows the call (no keep_alive: it stays loaded)
        state.served(model, body.get("keep_alive"))
    if reply.tool_calls:
        return _tool_reply(request, call, api, model, messages, reply, stream, body)
    text, finish = truncate(reply.text, max_tokens)
    p, c = prompt_tokens(messages), completion_tokens(text)
    state.update(call, reply=text, finish_reason=finish, completed=not stream)
    usage = {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
    delay_s = reply.token_delay_ms / 1000

    if api == "openai":
        if stream:
            include = bool((body.get("stream_options") or {}).get("include_usage"))
            frames = openai_frames(model, text, finish, usage, include)
            return StreamingResponse(_stream(request, call, frames, delay_s), media_type="text/event-stream")
        return JSONResponse({
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion",
            "created": int(time.time()), "model": model, "system_fingerprint": None,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "logprobs": None, "finish_reason": finish}],
            "usage": usage,
        })
    if stream:
        frames = ollama_frames(model, text, finish, p, c)
        return StreamingResponse(_stream(request, call, frames, delay_s), media_type="application/x-ndjson")
    return JSONResponse({
        "model": model, "created_at": now_iso(), "message": {"role": "assistant", "content": text},
        "done": True, "done_reason": finish, "total_duration": 0, "load_duration": 0,
        "prompt_eval_count": p, "prompt_eval_duration": 0, "eval_count": c, "eval_duration": 0,
    })


def _tool_reply(request: Request, call: dict[str, Any], api: str, model: str, messages: list[dict[str, Any]],
                reply: Reply, stream: bool, body: dict[str, Any]) -> Response:
    """A rule with ``tool_calls``: the model calls tools instead of answering (content empty)."""
    state: ScriptState = request.app.state.scripted
    calls = openai_tool_calls(reply.tool_calls)
    p, c = prompt_tokens(messages), completion_tokens("")  # the reply's text is empty: 1 (the minimum)
    state.update(call, reply="", finish_reason="tool_calls", tool_calls=calls, completed=not stream)
    usage = {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
    if api == "openai":
        if stream:
            include = bool((body.get("stream_options") or {}).get("include_usage"))
            frames = openai_tool_frames(model, reply.tool_calls, usage, include)
            return StreamingResponse(_stream(request, call, frames, 0), media_type="text/event-stream")
        return JSONResponse({
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion",
            "created": int(time.time()), "model": model, "system_fingerprint": None,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": calls},
                         "logprobs": None, "finish_reason": "tool_calls"}],
            "usage": usage,
        })
    message = {"role": "assistant", "content": "",
               "tool_calls": [{"function": {"name": t["name"], "arguments": t.get("arguments", {})}}
                              for t in reply.tool_calls]}
    return JSONResponse({
        "model": model, "created_at": now_iso(), "message": message, "done": True, "done_reason": "stop",
        "total_duration": 0, "load_duration": 0, "prompt_eval_count": p, "prompt_eval_duration": 0,
        "eval_count": c, "eval_duration": 0,
    })


class _DeadServer:
    """Pure ASGI middleware (streaming-safe): 503 on everything but ``/_*`` while down."""

    def __init__(self, app: ASGIApp, state: ScriptState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and self.state.is_down and not path.startswith("/_"):
            api = "ollama" if path.startswith("/api/") else "openai"
            response = error_response(api, 503, "scripted server is down", code="service_unavailable")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    return json.loads(raw) if raw.strip() else {}


def create_app(script: dict[str, Any] | None = None) -> Starlette:
    state = ScriptState()
    state.set_script(script)

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def openai_models(_: Request) -> Response:
        created = int(time.time())
        data = [{"id": m, "object": "model", "created": created, "owned_by": "scripted"}
                for m in state.loaded_models()]
        return JSONResponse({"object": "list", "data": data})

    async def tags(_: Request) -> Response:
        return JSONResponse({"models": [model_entry(m, loaded=False) for m in state.models()]})

    async def ps(_: Request) -> Response:
        return JSONResponse({"models": [model_entry(m, loaded=True) for m in state.loaded_models()]})

    async def put_script(request: Request) -> Response:
        try:
            state.set_script(await _json_body(request))
        except ValueError as exc:  # includes JSONDecodeError
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"ok": True})

    async def calls(request: Request) -> Response:
        if request.method == "DELETE":
            state.clear_calls()
            return JSONResponse({"ok": True})
        return JSONResponse(state.get_calls())

    async def fail(request: Request) -> Response:
        body = await _json_body(request)
        state.fail(int(body.get("status", 503)), int(body.get("times", 1)))
        return JSONResponse({"ok": True})

    async def down(_: Request) -> Response:
        state.down()
        return JSONResponse({"ok": True})

    async def up(_: Request) -> Response:
        state.up()
        return JSONResponse({"ok": True})

    async def openai_chat(request: Request) -> Response:
        return await _chat(request, "openai")

    async def ollama_chat(request: Request) -> Response:
        return await _chat(request, "ollama")

    app = Starlette(middleware=[Middleware(_DeadServer, state=state)], routes=[
        Route("/health", health), Route("/v1/models", openai_models), Route("/api/tags", tags),
        Route("/api/ps", ps), Route("/v1/chat/completions", openai_chat, methods=["POST"]),
        Route("/api/chat", ollama_chat, methods=["POST"]), Route("/_script", put_script, methods=["PUT"]),
        Route("/_calls", calls, methods=["GET", "DELETE"]), Route("/_fail", fail, methods=["POST"]),
        Route("/_down", down, methods=["POST"]), Route("/_up", up, methods=["POST"]),
    ])

    app.state.scripted = state
    return app


def _server(app: Starlette) -> uvicorn.Server:
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=1)
    return uvicorn.Server(config)


def start_server_thread(
    script: dict[str, Any] | None = None, *, app: Starlette | None = None, host: str = "127.0.0.1",
) -> tuple[str, Callable[[], None]]:
    """Run uvicorn on a free port in a daemon thread; returns ``(base_url, stop)``.

    Pass ``app=create_app(...)`` to keep a handle on ``app.state.scripted``.
    """
    sock = uvicorn_thread.bind(host)
    stop = uvicorn_thread.serve(app or create_app(script), sock, lifespan="off", what="scripted LLM server")
    return uvicorn_thread.url(host, sock), stop


async def _serve_cli(server: uvicorn.Server, sock: socket.socket, url: str) -> None:
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():
        await asyncio.sleep(0.005)
    if server.started:
        print(f"LISTENING {url}", flush=True)
    await task


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--script", help="JSON file with the script")
    args = parser.parse_args(argv)
    script = None
    if args.script:
        with open(args.script, encoding="utf-8") as fh:
            script = json.load(fh)
    sock = uvicorn_thread.bind(args.host, args.port)
    asyncio.run(_serve_cli(_server(create_app(script)), sock, uvicorn_thread.url(args.host, sock)))


if __name__ == "__main__":
    main()
