"""Log records carry the service name and the response_id of the message being handled."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_response_id: contextvars.ContextVar[str] = contextvars.ContextVar("response_id", default="-")


def current_response_id() -> str:
    return _response_id.get()


@contextmanager
def bind_response_id(response_id: str) -> Iterator[None]:
    token = _response_id.set(response_id)
    try:
        yield
    finally:
        _response_id.reset(token)


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.response_id = _response_id.get()
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "service": getattr(record, "service", "-"),
            "response_id": getattr(record, "response_id", "-"),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data)


def configure_logging(service: str, level: str = "INFO", json_lines: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter(service))
    if json_lines:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(service)s rid=%(response_id)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "httpx", "httpcore", "neo4j"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    own = logging.getLogger("faststream")  # FastStream's own handler writes colour codes to stdout: ours instead
    own.handlers[:] = []
    own.propagate = True
