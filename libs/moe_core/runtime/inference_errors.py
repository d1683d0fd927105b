"""Inference failures, with what failed and whether trying again may help."""

from __future__ import annotations

import re

# How servers say that a request does not fit the model's context: llama.cpp ("exceeds the available context
# size"), OpenAI and vLLM ("maximum context length", code context_length_exceeded), Ollama ("context length"),
# Anthropic-style ("prompt is too long").
CONTEXT_LENGTH = re.compile(r"context[ _](?:size|length|window)|context_length_exceeded|prompt is too long", re.I)


def http_kind(status: int, body: str) -> str:
    """The kind of a server's HTTP error: `context_length` for a 400 (or 413) about the model's context, which no
    retry of the same request mends, else `http_status`."""
    return "context_length" if status in (400, 413) and CONTEXT_LENGTH.search(body) else "http_status"


KINDS = frozenset({"timeout", "connect", "http_status", "context_length", "bad_response", "no_server", "cancelled",
                   "unknown_template", "data_class_forbidden"})


class InferenceError(Exception):
    """kind: one of KINDS."""

    def __init__(self, kind: str, message: str, *, server: str = "", model: str = "", status: int = 0,
                 dropped: bool = False) -> None:
        super().__init__(f"{kind}: {message} (server={server or '-'}, model={model or '-'})")
        self.kind = kind
        self.detail = message
        self.server = server
        self.model = model
        self.status = status
        # the server closed the connection without an answer: most often a kept-alive connection it had just
        # closed as idle while the request went out. The client tries once more at once, on a new connection.
        self.dropped = dropped

    @property
    def retryable(self) -> bool:
        """Worth another server (or another try): the server failed, not the request."""
        if self.kind in ("timeout", "connect"):
            return True
        return self.kind == "http_status" and (self.status == 429 or self.status >= 500)

    @property
    def retry_same_server(self) -> bool:
        """Only brief overloads are retried on the same server; a timeout or refusal fails over at once."""
        return self.kind == "http_status" and (self.status == 429 or self.status >= 500)
