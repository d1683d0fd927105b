"""Script, rule matching, token counting, call recording and wire shapes for the scripted LLM.

``tests/support/scripted_llm.py`` wraps this in an ASGI app / uvicorn server.

Token counting rule (deterministic, asserted by tests elsewhere):

* ``prompt_tokens``  = number of whitespace-separated words across the text content of *all*
  request messages (string content, or the ``text`` parts of OpenAI content-part lists), min 1.
* ``completion_tokens`` = number of whitespace-separated words in the (possibly truncated)
  reply, min 1.
* If ``max_tokens`` (OpenAI ``max_tokens``/``max_completion_tokens``, Ollama
  ``options.num_predict``) is a positive int smaller than the reply's word count, the reply is
  cut to its first ``max_tokens`` words joined by single spaces and finish reason is ``length``.
* Every recorded call has ``completed``: false until its reply was sent to the end (a streamed reply:
  its last frame; a non-streamed one: when its body is built), ``cancelled`` when the client went away
  mid-stream. Tests use them to order events ("the client saw a token before the judge finished").
* A rule with ``tool_calls`` (``[{"name", "arguments": {...}}]``) answers with those tool calls
  (ids ``call_0``, ``call_1``, ...; content empty, recorded ``reply`` ""; finish reason
  ``tool_calls``); its ``completion_tokens`` is therefore 1 (the minimum).
* A rule with ``context_tokens`` N refuses a request of more than N prompt tokens as llama.cpp's server does:
  HTTP 400 "request (P tokens) exceeds the available context size (N tokens), try increasing it".
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.responses import JSONResponse

DEFAULT_SCRIPT: dict[str, Any] = {
    "models": ["planner-model", "expert-model", "judge-model"],
    "rules": [],
    "default_reply": "scripted default reply",
}
RULE_KEYS = {"model", "contains", "system_contains", "reply", "delay_ms", "token_delay_ms", "status", "times",
             "tool_calls", "context_tokens"}
_PIECE_RE = re.compile(r"\s*\S+\s*")


def content_text(content: Any) -> str:
    """Text of a message ``content``: a string, or a list of OpenAI/Anthropic-style parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and "text" in p)
    return str(content)


def count_words(text: str) -> int:
    return len(text.split())


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    return max(1, sum(count_words(content_text(m.get("content"))) for m in messages))


def completion_tokens(reply: str) -> int:
    return max(1, count_words(reply))


def split_pieces(reply: str) -> list[str]:
    """Stream pieces: one per word, whitespace attached; ``"".join(pieces) == reply``."""
    return _PIECE_RE.findall(reply)


def truncate(reply: str, max_tokens: Any) -> tuple[str, str]:
    """Return ``(reply, finish_reason)`` after applying ``max_tokens`` (see module doc)."""
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens > 0:
        words = reply.split()
        if len(words) > max_tokens:
            return " ".join(words[:max_tokens]), "length"
    return reply, "stop"


def normalize_model(name: str) -> str:
    return name[: -len(":latest")] if name.endswith(":latest") else name


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            return content_text(m.get("content"))
    return ""


def system_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(content_text(m.get("content")) for m in messages if m.get("role") == "system")


def validate_script(script: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults and reject typos; returns a deep copy."""
    if not isinstance(script, dict):
        raise ValueError("script must be a JSON object")
    unknown = set(script) - {"models", "rules", "default_reply"}
    if unknown:
        raise ValueError(f"unknown script keys: {sorted(unknown)}")
    out = copy.deepcopy(DEFAULT_SCRIPT) | copy.deepcopy(script)
    if not isinstance(out["models"], list) or not all(isinstance(m, str) for m in out["models"]):
        raise ValueError("'models' must be a list of strings")
    for i, rule in enumerate(out["rules"]):
        if not isinstance(rule, dict):
            raise ValueError(f"rule {i} must be an object")
        bad = set(rule) - RULE_KEYS
        if bad:
            raise ValueError(f"rule {i}: unknown keys {sorted(bad)}")
    return out


@dataclass
class Reply:
    text: str
    rule: int | None  # index of the matched rule, None = default_reply
    status: int = 200
    delay_ms: float = 0
    token_delay_ms: float = 0
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # [{"name", "arguments": {...}}]
    context_tokens: int = 0  # > 0: a prompt longer than this is refused as llama.cpp refuses it (HTTP 400)


@dataclass
class ScriptState:
    """Mutable, thread-safe server state: script, rule usage, recorded calls, injected faults."""

    script: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(DEFAULT_SCRIPT))
    calls: list[dict[str, Any]] = field(default_factory=list)
    fail_status: int = 503
    fail_remaining: int = 0
    is_down: bool = False
    loaded: list[str] | None = None  # models reported as loaded (/api/ps, /v1/models); None = all
    _uses: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.set_script(self.script)

    # -- control -----------------------------------------------------------------------------
    def set_script(self, script: dict[str, Any] | None) -> None:
        checked = validate_script(script or {})
        with self._lock:
            self.script = checked
            self._uses = [0] * len(checked["rules"])

    def get_calls(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self.calls)

    def clear_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    def fail(self, status: int = 503, times: int = 1) -> None:
        with self._lock:
            self.fail_status, self.fail_remaining = int(status), int(times)

    def down(self) -> None:
        self.is_down = True

    def up(self) -> None:
        self.is_down = False

    def set_loaded(self, models: list[str] | None) -> None:
        """What the server says it has in memory (a fleet prefers a server that has the model loaded)."""
        self.loaded = None if models is None else list(models)

    def loaded_models(self) -> list[str]:
        if self.loaded is None:
            return self.models()
        loaded = {normalize_model(m) for m in self.loaded}
        return [m for m in self.models() if normalize_model(m) in loaded]

    def served(self, model: str, keep_alive: Any) -> None:
        """Ollama's memory after a call: the model is loaded, unless the call's keep_alive was zero (0, "0",
        "0s", "0m": unload once answered)."""
        with self._lock:
            loaded = [normalize_model(m) for m in (self.loaded if self.loaded is not None else self.script["models"])]
            name = normalize_model(model)
            if str(keep_alive).strip() in ("0", "0s", "0m", "0h"):
                self.loaded = [m for m in loaded if m != name]
            elif name not in loaded:
                self.loaded = [*loaded, name]

    # -- request path ------------------------------------------------------------------------
    def models(self) -> list[str]:
        with self._lock:
            return list(self.script["models"])

    def has_model(self, model: Any) -> bool:
        names = {normalize_model(m) for m in self.models()}
        return isinstance(model, str) and normalize_model(model) in names

    def record(self, call: dict[str, Any]) -> dict[str, Any]:
        """Append a call (the stored dict is returned so the handler can update it)."""
        call = {**call, "ts": time.time(), "status": 200, "cancelled": False, "rule": None,
                "reply": None, "finish_reason": None, "completed": False}
        with self._lock:
            self.calls.append(call)
        return call

    def update(self, call: dict[str, Any], **changes: Any) -> None:
        with self._lock:
            call.update(changes)

    def take_failure(self) -> int | None:
        with self._lock:
            if self.fail_remaining > 0:
                self.fail_remaining -= 1
                return self.fail_status
        return None

    def match(self, model: str, messages: list[dict[str, Any]]) -> Reply:
        """First matching rule wins; consumes one use of a rule with ``times``."""
        user, system = last_user_text(messages), system_text(messages)
        with self._lock:
            for i, rule in enumerate(self.script["rules"]):
                times = rule.get("times")
                if times is not None and self._uses[i] >= times:
                    continue
                if "model" in rule and normalize_model(rule["model"]) != normalize_model(model):
                    continue
                if "contains" in rule and rule["contains"] not in user:
                    continue
                if "system_contains" in rule and rule["system_contains"] not in system:
                    continue
                self._uses[i] += 1
                text = rule.get("reply", self.script["default_reply"])
                return Reply(
                    text=text.replace("{last_user}", user),
                    rule=i,
                    status=int(rule.get("status", 200)),
                    delay_ms=float(rule.get("delay_ms", 0) or 0),
                    token_delay_ms=float(rule.get("token_delay_ms", 0) or 0),
                    tool_calls=list(rule.get("tool_calls") or []),
                    context_tokens=int(rule.get("context_tokens", 0) or 0),
                )
            return Reply(text=self.script["default_reply"].replace("{last_user}", user), rule=None)


# -- wire shapes ---------------------------------------------------------------------------------
def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def error_response(
    api: str, status: int, message: str, *, code: str | None = None, param: str | None = None,
) -> JSONResponse:
    if api == "ollama":
        return JSONResponse({"error": message}, status_code=status)
    kind = "invalid_request_error" if status < 500 else "server_error"
    if status == 429:
        kind = "rate_limit_error"
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


def model_entry(name: str, loaded: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": name,
        "model": name,
        "modified_at": now_iso(),
        "size": 0,
        "digest": hashlib.sha256(name.encode()).hexdigest(),
        "details": {"format": "gguf", "family": "scripted", "families": ["scripted"],
                    "parameter_size": "0B", "quantization_level": "none", "parent_model": ""},
    }
    if loaded:
        entry |= {"expires_at": "2099-01-01T00:00:00Z", "size_vram": 0, "context_length": 4096}
    return entry


def sse(obj: Any) -> bytes:
    return f"data: {json.dumps(obj)}\n\n".encode()


def openai_frames(model: str, text: str, finish: str, usage: dict[str, int], include_usage: bool):
    deltas: list[tuple[dict[str, Any], str | None]] = [({"role": "assistant", "content": ""}, None)]
    deltas += [({"content": piece}, None) for piece in split_pieces(text)]
    return _openai_stream(model, [*deltas, ({}, finish)], usage, include_usage)


def _openai_stream(model: str, deltas: list[tuple[dict[str, Any], str | None]], usage: dict[str, int],
                   include_usage: bool) -> list[bytes]:
    """An OpenAI chat-completion stream: a chunk per (delta, finish reason), the usage chunk if asked, [DONE]."""
    base = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model, "system_fingerprint": None}
    extra = {"usage": None} if include_usage else {}
    frames = [sse({**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}],
                   **extra}) for delta, reason in deltas]
    if include_usage:
        frames.append(sse({**base, "choices": [], "usage": usage}))
    frames.append(b"data: [DONE]\n\n")
    return frames


def ollama_frames(model: str, text: str, finish: str, p: int, c: int) -> list[bytes]:
    def line(obj: dict[str, Any]) -> bytes:
        return (json.dumps({"model": model, "created_at": now_iso(), **obj}) + "\n").encode()

    frames = [line({"message": {"role": "assistant", "content": piece}, "done": False})
              for piece in split_pieces(text)]
    frames.append(line({"message": {"role": "assistant", "content": ""}, "done": True,
                        "done_reason": finish, "total_duration": 0, "load_duration": 0,
                        "prompt_eval_count": p, "prompt_eval_duration": 0,
                        "eval_count": c, "eval_duration": 0}))
    return frames


def openai_tool_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A rule's ``tool_calls`` ([{"name", "arguments"}]) in OpenAI form, with stable ids call_0, call_1, ..."""
    return [{"id": f"call_{i}", "type": "function",
             "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments", {}))}}
            for i, c in enumerate(calls)]


def openai_tool_frames(model: str, calls: list[dict[str, Any]], usage: dict[str, int], include_usage: bool):
    """A streamed tool-call reply: the call's name first, its arguments in two fragments."""
    deltas: list[tuple[dict[str, Any], str | None]] = [({"role": "assistant", "content": None}, None)]
    for i, call in enumerate(openai_tool_calls(calls)):
        args = call["function"]["arguments"]
        half = len(args) // 2
        deltas.append(({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                        "function": {"name": call["function"]["name"], "arguments": ""}}]}, None))
        deltas += [({"tool_calls": [{"index": i, "function": {"arguments": part}}]}, None)
                   for part in (args[:half], args[half:])]
    return _openai_stream(model, [*deltas, ({}, "tool_calls")], usage, include_usage)
