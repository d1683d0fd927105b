"""Inference failures, with what failed and whether trying again may help."""

from __future__ import annotations


class InferenceError(Exception):
    """kind: timeout | connect | http_status | bad_response | no_server | cancelled | unknown_template."""

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
