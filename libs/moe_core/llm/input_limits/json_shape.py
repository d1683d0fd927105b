"""Checks of a JSON body's shape that run before (depth) and right after (sizes, text) it is decoded."""

from __future__ import annotations

from typing import Any

from moe_core.llm.input_limits.settings import EdgeSettings
from moe_core.llm.unicode_text import lone_surrogate, surrogate_message

_NOISE = bytes(range(256)).translate(None, b'[]{}"')  # every byte that is neither a bracket nor a quote
_OPEN = frozenset(b"[{")
MODEL_ROUTES = ("/v1/chat/completions", "/v1/messages", "/v1/messages/count_tokens", "/v1/responses")


class EdgeError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


def check_depth(body: bytes, limit: int) -> None:
    """Raise when the JSON text nests deeper than `limit`, without decoding it (strings are skipped, so a
    bracket inside a string does not count). Ill-formed JSON is left to the decoder's error."""
    depth = 0
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")  # no escaped quote is left to mislead
    skeleton = unescaped.translate(None, _NOISE)  # brackets and quotes only
    for byte in b"".join(skeleton.split(b'"')[::2]):  # the brackets between strings
        if byte in _OPEN:
            depth += 1
            if depth > limit:
                raise EdgeError(400, f"the JSON body nests deeper than {limit} levels (MOE_MAX_JSON_DEPTH)",
                                code="json_too_deep")
        else:
            depth -= 1


def check_shape(data: Any, path: str, limits: EdgeSettings) -> None:
    """The request's own lists (messages, tools, stop) and every string and array in the body."""
    if isinstance(data, dict) and path in MODEL_ROUTES:
        for name in ("messages", "input"):
            items = data.get(name)
            if isinstance(items, list) and len(items) > limits.max_messages:
                raise EdgeError(413, f"{len(items)} {name}: at most {limits.max_messages} in one request "
                                     "(MOE_MAX_MESSAGES)", param=name, code="too_many_messages")
        tools = data.get("tools")
        if isinstance(tools, list) and len(tools) > limits.max_tools:
            raise EdgeError(400, f"{len(tools)} tools: at most {limits.max_tools} (MOE_MAX_TOOLS)", param="tools")
        for name in ("stop", "stop_sequences"):
            stop = data.get(name)
            if isinstance(stop, list) and len(stop) > limits.max_stop:
                raise EdgeError(400, f"{len(stop)} stop sequences: at most {limits.max_stop} (MOE_MAX_STOP)",
                                param=name)
    _walk(data, "", limits, image_payloads(data) if path in MODEL_ROUTES else {})


def image_payloads(data: Any) -> dict[str, int]:
    """Where a model request carries image data (OpenAI image_url parts, Anthropic image blocks) and how long
    each string is. Images travel beside the bus, by reference (moe_core.llm.input_limits.images): the bus estimate does
    not
    count them, and their own limit (MOE_IMAGE_MAX_BYTES) replaces the string limit."""
    found: dict[str, int] = {}
    messages = data.get("messages") if isinstance(data, dict) else None
    for i, message in enumerate(messages if isinstance(messages, list) else []):
        content = message.get("content") if isinstance(message, dict) else None
        for j, part in enumerate(content if isinstance(content, list) else []):
            if not isinstance(part, dict):
                continue
            here = f"messages.{i}.content.{j}"
            spec, source = part.get("image_url"), part.get("source")
            if part.get("type") == "image_url" and isinstance(spec, str):
                found[f"{here}.image_url"] = len(spec)
            elif part.get("type") == "image_url" and isinstance(spec, dict) and isinstance(spec.get("url"), str):
                found[f"{here}.image_url.url"] = len(spec["url"])
            elif part.get("type") == "image" and isinstance(source, dict) and isinstance(source.get("data"), str):
                found[f"{here}.source.data"] = len(source["data"])
    return found


def _walk(value: Any, where: str, limits: EdgeSettings, images: dict[str, int]) -> None:
    if isinstance(value, str):
        if "\x00" in value:  # no store takes one (Postgres text), no model needs one
            raise EdgeError(400, f"{where or 'body'}: a string holding a NUL character", param=where or None)
        _unicode(value, where, "a string")
        if len(value) > limits.max_string_chars and where not in images:
            raise EdgeError(400, f"{where or 'body'}: a string of {len(value)} characters, at most "
                                 f"{limits.max_string_chars} (MOE_MAX_STRING_CHARS)", param=where or None)
    elif isinstance(value, list):
        top = where in ("messages", "input")
        if len(value) > limits.max_array_items and not top:
            raise EdgeError(400, f"{where or 'body'}: an array of {len(value)} items, at most "
                                 f"{limits.max_array_items} (MOE_MAX_ARRAY_ITEMS)", param=where or None)
        for i, item in enumerate(value):
            _walk(item, f"{where}.{i}" if where else str(i), limits, images)
    elif isinstance(value, dict):
        for key, item in value.items():
            if len(key) > limits.max_string_chars or "\x00" in key:
                raise EdgeError(400, f"{where or 'body'}: a key too long or holding a NUL", param=where or None)
            _unicode(key, where, "a key")  # checked before it becomes part of a path that may be echoed
            _walk(item, f"{where}.{key}" if where else key, limits, images)


def _unicode(text: str, where: str, what: str) -> None:
    """A lone UTF-16 surrogate (JSON `"\\ud800"`, or a pair reversed) is not text any store, message or
    tokenizer takes: refused with its path, never echoed (moe_core.llm.unicode_text)."""
    if (at := lone_surrogate(text)) is not None:
        raise EdgeError(400, surrogate_message(where or "body", text, at, what), param=where or None,
                        code="invalid_text")
