"""A zero-latency OpenAI-compatible inference server for the benchmark.

A bare ASGI app (no framework) on uvicorn: it answers every chat completion at once with a fixed reply
per model, counts tokens with the same rule as the tests' scripted server (words; see
``tests/support/scripted_core.py``) and keeps counters per model so the benchmark can check the
fleet's reported usage against what the inference server really saw.

    python -m bench.llm_server --port 0 --script replies.json   # prints ``LISTENING http://...``

Endpoints: ``POST /v1/chat/completions`` (stream or not), ``GET /v1/models``, ``GET /health``,
``GET /_stats`` (counters), ``POST /_stats/reset``, ``GET /_calls`` (the calls' messages and replies: kept only
after ``POST /_calls {"keep": true}``, the last ``CALL_LOG``; bench.token_stages splits them), ``POST /_slow`` (a slow
model for the streams cell:
``{"seconds": S, "replies": {...}}`` makes every completion take S seconds, a streamed one spread over its
frames, with these replies; ``{}`` makes it instant again).
Script: ``{"replies": {"<model>": "<text>"}, "schemas": {"<schema name>": "<text>"}, "default": "<text>"}``: a
request whose response_format names a schema of ``schemas`` (a structured call: graph-ingest's ``triples``,
gap-healer's ``classification``) gets that reply whatever its model, as a real model answers what it is asked; any
other the reply of its model. ``{seq}`` in a reply is a number of its own per call; ``{last_user}`` is replaced by the
last user message; a reply with ``{key}`` is one answer per key, as a batched structured call asks:
``{"<key>": <the reply, {key} the key>, ...}`` for each property of the request's JSON schema that is itself an
object (gap-healer's batch_schema, keyed by term), else the reply once with ``{key}`` the ``Term:`` that the last
user message names (its one-term call).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import socket
import time
import uuid
from collections import defaultdict, deque
from typing import Any

import orjson
import uvicorn
import uvloop

from tests.support.scripted_core import (
    completion_tokens,
    last_user_text,
    openai_frames,
    prompt_tokens,
    truncate,
)

Scope = dict[str, Any]
CALL_LOG = 2000  # calls kept for GET /_calls (bounded: the log is for a few sampled requests)


class Counters:
    """Calls and tokens per model since the last reset."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.by_model: dict[str, dict[str, int]] = defaultdict(
            lambda: {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0})

    def add(self, model: str, prompt: int, completion: int) -> None:
        row = self.by_model[model]
        row["calls"] += 1
        row["prompt_tokens"] += prompt
        row["completion_tokens"] += completion

    def snapshot(self) -> dict[str, Any]:
        models = {m: dict(v) for m, v in self.by_model.items()}
        total = {k: sum(v[k] for v in models.values()) for k in ("calls", "prompt_tokens", "completion_tokens")}
        return {"models": models, "total": total}


_SEQ = itertools.count(1)  # `{seq}` in a reply: a number of its own per call (new names per answer learned)


_TERM = re.compile(r"^Term: (.+)$", re.MULTILINE)


def reply_for(script: dict[str, Any], model: str, messages: list[dict[str, Any]],
              fmt: dict[str, Any] | None = None) -> str:
    """The scripted reply to a call of `model` with `messages`; `fmt`: the request's response_format, if any."""
    asked = (fmt or {}).get("json_schema") or {}
    schema: dict[str, Any] = asked["schema"] if isinstance(asked.get("schema"), dict) else {}
    text = str(script.get("schemas", {}).get(asked.get("name"))
               or script.get("replies", {}).get(model, script.get("default", "ok")))
    if "{seq}" in text:
        text = text.replace("{seq}", str(next(_SEQ)))
    if "{key}" in text:
        return _per_key(text, messages, schema)
    return text.replace("{last_user}", last_user_text(messages))


def _per_key(text: str, messages: list[dict[str, Any]], schema: dict[str, Any]) -> str:
    """`text` (a JSON value) once per key of a keyed schema, `{key}` the key (JSON-escaped); else once."""
    def one(key: str) -> str:
        return text.replace("{key}", json.dumps(key)[1:-1])

    keys = [k for k, v in (schema.get("properties") or {}).items() if isinstance(v, dict) and v.get("type") == "object"]
    if keys:
        return "{" + ", ".join(f"{json.dumps(k)}: {one(k)}" for k in keys) + "}"
    term = _TERM.search(last_user_text(messages))
    return one(term.group(1).strip() if term else "")


def completion(model: str, text: str, finish: str, usage: dict[str, int]) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
        "model": model, "system_fingerprint": None,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                     "finish_reason": finish}],
        "usage": usage,
    }


class App:
    def __init__(self, script: dict[str, Any]) -> None:
        self.script = script
        self.counters = Counters()
        self.slow_s = 0.0
        self.slow_replies: dict[str, str] = {}
        self.calls: deque[dict[str, Any]] | None = None  # None: calls are not kept (the cells' default)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        path, method = scope["path"], scope["method"]
        if path in ("/v1/chat/completions", "/chat/completions") and method == "POST":
            await self.chat(await _body(receive), send)
        elif path in ("/v1/models", "/models"):
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "bench"}
                    for m in self.script.get("replies", {})]
            await _json(send, 200, {"object": "list", "data": data})
        elif path == "/health":
            await _json(send, 200, {"status": "ok"})
        elif path == "/_stats":
            await _json(send, 200, self.counters.snapshot())
        elif path == "/_stats/reset" and method == "POST":
            self.counters.reset()
            await _json(send, 200, {"ok": True})
        elif path == "/_calls":
            kept = list(self.calls or [])
            if method == "POST":  # the calls kept so far are answered, then the log starts afresh or stops
                keep = bool(orjson.loads(await _body(receive) or b"{}").get("keep"))
                self.calls = deque(maxlen=CALL_LOG) if keep else None
            await _json(send, 200, {"calls": kept})
        elif path == "/_slow" and method == "POST":
            slow = orjson.loads(await _body(receive) or b"{}")
            self.slow_s = float(slow.get("seconds", 0.0))
            self.slow_replies = {str(k): str(v) for k, v in (slow.get("replies") or {}).items()}
            await _json(send, 200, {"ok": True})
        else:
            await _json(send, 404, {"error": {"message": f"no route {path}", "type": "invalid_request_error"}})

    async def chat(self, raw: bytes, send: Any) -> None:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            await _json(send, 400, {"error": {"message": "a JSON body with a model is required",
                                              "type": "invalid_request_error"}})
            return
        model, messages = body["model"], body.get("messages") or []
        script = {**self.script, "replies": {**self.script.get("replies", {}), **self.slow_replies}}
        text, finish = truncate(reply_for(script, model, messages, _format(body)),
                                body.get("max_tokens", body.get("max_completion_tokens")))
        p, c = prompt_tokens(messages), completion_tokens(text)
        self.counters.add(model, p, c)
        if self.calls is not None:
            self.calls.append({"model": model, "messages": messages, "reply": text, "prompt_tokens": p,
                               "completion_tokens": c})
        usage = {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
        if body.get("stream"):
            include = bool((body.get("stream_options") or {}).get("include_usage"))
            frames = openai_frames(model, text, finish, usage, include)
            if self.slow_s > 0:
                await _paced(send, frames, self.slow_s)
            else:
                await _send(send, 200, b"".join(frames), b"text/event-stream")
        else:
            if self.slow_s > 0:
                await asyncio.sleep(self.slow_s)
            await _json(send, 200, completion(model, text, finish, usage))


def _format(body: dict[str, Any]) -> dict[str, Any] | None:
    fmt = body.get("response_format")
    return fmt if isinstance(fmt, dict) else None


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send(send: Any, status: int, body: bytes, content_type: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _paced(send: Any, frames: list[bytes], seconds: float) -> None:
    """A slow model's stream: the frames spread evenly over `seconds`."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
    for frame in frames:
        await asyncio.sleep(seconds / len(frames))
        await send({"type": "http.response.body", "body": frame, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _json(send: Any, status: int, data: Any) -> None:
    await _send(send, status, orjson.dumps(data), b"application/json")


async def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():  # noqa: ASYNC110 (uvicorn offers no event)
        await asyncio.sleep(0.01)
    if server.started:
        print(f"LISTENING http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    await task


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--script", help="JSON file: {replies: {model: text}, default: text}")
    args = parser.parse_args(argv)
    script: dict[str, Any] = {"replies": {}, "default": "ok"}
    if args.script:
        with open(args.script, encoding="utf-8") as fh:
            script = json.load(fh)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    config = uvicorn.Config(App(script), log_level="warning", access_log=False, lifespan="on",
                            timeout_graceful_shutdown=1, backlog=2048)
    uvloop.run(_serve(uvicorn.Server(config), sock))


if __name__ == "__main__":
    main()
