"""Tools run in worker processes under a hard time bound: a call that does not answer in time has its
worker killed and replaced (SymPy and regex can hang; a thread cannot be stopped, a process can).
Workers fork from a forkserver that has the tool modules (SymPy, pint) preloaded, so a replacement
is ready in milliseconds; each worker also runs under an address-space limit."""

from __future__ import annotations

import json
import logging
import multiprocessing
import queue
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from moe_core.contracts.tools import ToolErrorCode

log = logging.getLogger(__name__)
PRELOAD = ["mcp_service.tools"]
STARTUP_WAIT_S = 300.0


@dataclass(frozen=True)
class RawOutcome:
    """What a worker answered: text + result, or an error code + message."""

    text: str = ""
    result: dict[str, Any] | None = None
    code: ToolErrorCode | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.code is None


def execute(name: str, args: dict[str, Any], max_result_bytes: int) -> dict[str, Any]:
    """Run one tool in this process and return a JSON-ready outcome (never raises)."""
    from mcp_service.tools import IMPLEMENTATIONS, ToolError

    try:
        output = IMPLEMENTATIONS[name](args)
        body = {"text": output.text, "result": output.result}
        size = len(json.dumps(body, default=str, allow_nan=False))
        if size > max_result_bytes:
            return {"code": "result_too_large",
                    "message": f"the result has {size:,} bytes (limit {max_result_bytes:,})"}
        return body
    except ToolError as exc:
        return {"code": exc.code, "message": exc.message}
    except MemoryError:
        return {"code": "result_too_large", "message": "the computation ran out of its memory limit"}
    except RecursionError:
        return {"code": "tool_execution_error", "message": "the input is nested too deeply"}
    except ValueError as exc:
        if "integer string conversion" in str(exc):
            return {"code": "result_too_large", "message": "the result has too many digits to show"}
        return {"code": "tool_execution_error", "message": f"ValueError: {str(exc)[:300]}"}
    except Exception as exc:  # a tool bug or an input the tool did not foresee: a clear error, not a crash
        return {"code": "tool_execution_error", "message": f"{type(exc).__name__}: {str(exc)[:300]}"}


def _worker_main(conn: Connection, memory_limit_bytes: int, max_result_bytes: int) -> None:
    if memory_limit_bytes > 0:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_limit_bytes, memory_limit_bytes))
    while True:
        try:
            request = conn.recv_bytes()
        except (EOFError, OSError):
            return
        if not request:
            return
        name, args = json.loads(request)
        outcome = execute(name, args, max_result_bytes)
        conn.send_bytes(json.dumps(outcome, default=str).encode())


def prestart() -> threading.Thread:
    """Start the forkserver (it imports SymPy and pint) while the main process is still importing the web
    stack; the pool's first worker then forks at once. Safe to skip: the pool starts it when needed."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    from multiprocessing import forkserver

    thread = threading.Thread(target=forkserver.ensure_running, name="mcp-forkserver", daemon=True)
    thread.start()
    return thread


class _Worker:
    def __init__(self, ctx: Any, memory_limit_bytes: int, max_result_bytes: int) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, memory_limit_bytes, max_result_bytes),
                                   daemon=True, name="mcp-tool-worker")
        self.process.start()
        child.close()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


class WorkerPool:
    """A fixed number of worker processes; `call` blocks until a worker answers or the time bound ends."""

    def __init__(self, size: int = 2, memory_limit_mb: int = 1024, max_result_bytes: int = 1_000_000) -> None:
        self.size = size
        self.memory_limit_bytes = memory_limit_mb * 1024 * 1024
        self.max_result_bytes = max_result_bytes
        self._ctx = multiprocessing.get_context("forkserver")
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._started = threading.Event()
        self.replaced = 0  # workers killed (timeout) or found dead, for metrics and tests

    def start(self) -> None:
        """Start the workers (blocking: the forkserver first imports the tool modules)."""
        try:
            self._ctx.set_forkserver_preload(PRELOAD)
            for _ in range(self.size):
                self._idle.put(self._spawn())
        finally:
            self._started.set()

    def start_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.start, name="mcp-pool-start", daemon=True)
        thread.start()
        return thread

    @property
    def ready(self) -> bool:
        return self._started.is_set() and not self._closed and any(w.process.is_alive() for w in list(self._all))

    def _spawn(self) -> _Worker:
        worker = _Worker(self._ctx, self.memory_limit_bytes, self.max_result_bytes)
        with self._lock:
            self._all.add(worker)
        return worker

    def _replace(self, worker: _Worker) -> None:
        """Kill a stuck or dead worker now; its replacement forks in the background (the caller's time
        bound does not pay for it; other calls wait for a free worker meanwhile)."""
        worker.kill()
        with self._lock:
            self._all.discard(worker)
            self.replaced += 1
            closed = self._closed
        if not closed:
            threading.Thread(target=self._respawn, name="mcp-respawn", daemon=True).start()

    def _respawn(self) -> None:
        if self._closed:
            return
        try:
            self._idle.put(self._spawn())
        except Exception:  # the pool is shutting down (the forkserver is gone): nothing to replace
            log.exception("could not start a replacement tool worker")

    def call(self, name: str, args: dict[str, Any], timeout_s: float) -> RawOutcome:
        """Run `name(args)` on a worker; at most `timeout_s` seconds in all (waiting for a worker included)."""
        if not self._started.wait(timeout=STARTUP_WAIT_S):  # a call that arrives while the pool starts waits
            return RawOutcome(code="timeout", message="the tool workers did not start in time")
        end = time.monotonic() + timeout_s
        try:
            payload = json.dumps([name, args], allow_nan=False).encode()
        except (TypeError, ValueError, RecursionError) as exc:
            return RawOutcome(code="wrong_arguments", message=f"the arguments are not plain JSON: {exc}")
        try:
            worker = self._idle.get(timeout=max(timeout_s, 0.001))
        except queue.Empty:
            return RawOutcome(code="timeout", message=f"no tool worker was free within {timeout_s:.1f} s")
        try:
            worker.conn.send_bytes(payload)
            if not worker.conn.poll(max(end - time.monotonic(), 0.001)):
                log.warning("tool %s exceeded %.1f s: killing its worker", name, timeout_s)
                self._replace(worker)
                return RawOutcome(code="timeout", message=f"{name} did not finish within {timeout_s:.1f} s")
            data = json.loads(worker.conn.recv_bytes())
        except (EOFError, OSError, ValueError) as exc:
            log.warning("tool worker for %s died (%s): replacing it", name, exc)
            self._replace(worker)
            return RawOutcome(code="tool_execution_error", message=f"{name} crashed its worker process")
        self._idle.put(worker)
        return RawOutcome(text=data.get("text", ""), result=data.get("result"), code=data.get("code"),
                          message=data.get("message", ""))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = list(self._all)
            self._all.clear()
        for worker in workers:
            try:
                worker.conn.send_bytes(b"")
            except OSError:
                pass
            worker.process.join(timeout=1)
            worker.kill()
