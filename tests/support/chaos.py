"""Chaos test helpers: ask the gateway with the official openai SDK in the background and keep exactly what
came back (status, headers, body, elapsed time); wait for a condition; find the process that holds a
connection to a port (which replica is mid-request)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai

MODEL = "moe-orchestrator"


@dataclass
class Outcome:
    """One request's result: an answer (status 200) or the error the API returned."""

    status: int = 0
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    elapsed_s: float = 0.0
    failure: str = ""  # the client could not get any HTTP answer (connection error, client timeout)

    @property
    def content(self) -> str:
        return str(self.body["choices"][0]["message"]["content"] or "") if self.status == 200 else ""

    @property
    def response_id(self) -> str:
        """The answered request's response id (its record's key); empty for an error."""
        return str(self.body.get("id", "")).removeprefix("chatcmpl-") if self.status == 200 else ""

    @property
    def error(self) -> dict[str, Any]:
        return dict(self.body.get("error") or {})


def ask(base_url: str, api_key: str, text: str, *, model: str = MODEL, timeout_s: float | None = None,
        client_timeout_s: float = 180) -> Outcome:
    """One chat completion through the openai SDK (no retries); never raises."""
    headers = {"X-Request-Timeout": str(timeout_s)} if timeout_s else {}
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=client_timeout_s,
                           default_headers=headers)
    started = time.monotonic()
    outcome = Outcome()
    try:
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": text}])
        outcome.status, outcome.headers = raw.status_code, dict(raw.headers)
        outcome.body = raw.http_response.json()
    except openai.APIStatusError as exc:
        outcome.status, outcome.headers = exc.status_code, dict(exc.response.headers)
        try:
            outcome.body = exc.response.json()
        except ValueError:
            outcome.body = {"raw": exc.response.text}
    except openai.APIError as exc:  # no HTTP answer at all
        outcome.failure = f"{type(exc).__name__}: {exc}"
    finally:
        outcome.elapsed_s = time.monotonic() - started
        client.close()
    return outcome


class Background:
    """`ask` on a thread; `result()` joins it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._outcome: Outcome | None = None

        def run() -> None:
            self._outcome = ask(*args, **kwargs)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self, timeout_s: float = 200) -> Outcome:
        self._thread.join(timeout_s)
        assert self._outcome is not None, f"the request did not return within {timeout_s}s"
        return self._outcome


def wait_until(check: Callable[[], Any], what: str, timeout_s: float = 60) -> Any:
    end = time.monotonic() + timeout_s
    while not (found := check()):
        assert time.monotonic() < end, f"timed out after {timeout_s}s waiting for {what}"
        time.sleep(0.05)
    return found


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").glob("*"):
        try:
            target = fd.readlink().as_posix()
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def connected_to(pids: list[int], port: int) -> list[int]:
    """The pids among `pids` with an established TCP connection to 127.0.0.1:`port` (/proc, IPv4)."""
    remote = f"0100007F:{port:04X}"
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cols = line.split()
        if cols[2] == remote and cols[3] == "01":  # 01: ESTABLISHED
            inodes.add(cols[9])
    return [pid for pid in pids if _socket_inodes(pid) & inodes]


def holder(pids: list[int], port: int, window_s: float = 8, timeout_s: float = 40) -> int:
    """The one pid among `pids` that keeps a connection to `port` open through a whole window (a held call);
    pooled keep-alive connections of the others come and go."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        steady = set(pids)
        window_end = time.monotonic() + window_s
        while time.monotonic() < window_end and steady:
            steady &= set(connected_to(pids, port))
            time.sleep(0.2)
        if len(steady) == 1:
            return steady.pop()
    raise AssertionError(f"no single process of {pids} holds a connection to port {port}")
