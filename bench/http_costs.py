"""CPU of one model call in the calling service (the inference client), by HTTP connection layer:

  python -m bench.http_costs [N]

Runs the scripted inference server in a process of its own and calls it N times through
moe_core.llm.inference.InferenceClient, a completion and a streamed completion of 40 pieces, first with httpx's own
connection layer (httpcore, h11: the client before) and then with the client's default (httpx over aiohttp,
moe_core.llm.inference.client.default_http). Reports this process's CPU milliseconds per call (`time.process_time`:
the server's work is not in it, and other users' load on a shared machine changes it less than wall time would).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import uvloop

from moe_core.llm.inference import InferenceClient, InferenceConfig, ModelRef
from moe_core.llm.inference.client import MAX_CONNECTIONS, default_http
from moe_core.llm.inference.servers import InferenceServer

REPO = Path(__file__).resolve().parents[1]
PIECES = 40
QUESTION = [{"role": "user", "content": "Compare the two approaches and name the trade-offs of each one."}]


def _start_server() -> tuple[subprocess.Popen[str], str]:
    script = {"models": ["m"], "rules": [{"reply": " ".join(f"word{i}" for i in range(PIECES))}]}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump(script, file)
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.scripted_llm", "--script", file.name],  # noqa: S603
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("LISTENING "):
        proc.kill()
        raise RuntimeError(f"the scripted server did not start: {line!r}")
    return proc, line.split()[1]


async def _cpu_ms(call: Callable[[], Awaitable[object]], n: int) -> float:
    for _ in range(20):  # connections open, caches warm
        await call()
    start = time.process_time()
    for _ in range(n):
        await call()
    return (time.process_time() - start) * 1000 / n


async def _measure(url: str, http: httpx.AsyncClient, n: int) -> tuple[float, float]:
    client = InferenceClient(InferenceConfig(servers=[InferenceServer(name="s", url=url, models=["m"])]), http)
    refs = [ModelRef(model="m")]

    async def streamed() -> None:
        async for _ in client.stream(refs, QUESTION, max_tokens=100):
            pass

    try:
        return (await _cpu_ms(lambda: client.chat(refs, QUESTION, max_tokens=100), n),
                await _cpu_ms(streamed, n))
    finally:
        await client.aclose()


def main(n: int) -> None:
    proc, url = _start_server()
    try:
        layers = {"httpx (httpcore, h11)": lambda: httpx.AsyncClient(limits=httpx.Limits(
                      max_connections=MAX_CONNECTIONS)),
                  "httpx over aiohttp (default_http)": default_http}
        for name, make in layers.items():
            chat, stream = uvloop.run(_measure(url, make(), n))  # the services' loop (uvicorn picks uvloop)
            print(f"{name}: completion {chat:.2f} ms CPU per call, streamed ({PIECES} pieces) {stream:.2f} ms")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
