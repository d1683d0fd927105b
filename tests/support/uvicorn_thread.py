"""An ASGI app served by uvicorn in a daemon thread of the test process, on a socket bound here (port 0 unless
given): the scripted inference server, the auth proxy and the console under SSO all start this way."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import uvicorn


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening-ready socket on (host, port); IPv6 when the host is."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def url(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(app: Any, sock: socket.socket, *, lifespan: Literal["auto", "on", "off"] = "on",
          start_timeout: float = 10, stop_timeout: float = 5, what: str = "the server") -> Callable[[], None]:
    """Start `app` on `sock` and wait until uvicorn says it started (RuntimeError naming `what` if the thread
    dies or `start_timeout` passes). Returns `stop`, which asks uvicorn to exit and waits for the thread."""
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan=lifespan,
                            timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.005)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=stop_timeout)
        sock.close()

    return stop
