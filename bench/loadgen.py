"""The load generator: real HTTP (aiohttp), a fixed number of concurrent closed-loop clients.

Each client sends its next request as soon as its previous one finished, until the cell's request
budget or time budget is used up. Streaming requests measure the time to the first content token.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from bench.stats import summary_ms

REQUEST_TIMEOUT_S = 60
CELL_LONGEST = 4  # a cell short of its least requests runs at most this many times its seconds


# Idle pooled connections are dropped before uvicorn's keep-alive timeout (5 s) closes them under a request
# ("Can not write request body": the client wrote into a connection the server had just closed).
KEEPALIVE_S = 4.0


@dataclass
class Target:
    """Where one path's requests go."""

    name: str
    url: str  # base URL ending in /v1
    model: str
    api_key: str
    check: Callable[[dict[str, Any]], str | None]
    question: Callable[[int], str]
    counter: itertools.count = field(default_factory=itertools.count)  # fresh questions, never reused

    def next_question(self) -> str:
        return self.question(next(self.counter))

    def body(self, stream: bool, question: str | None = None) -> dict[str, Any]:
        content = question if question is not None else self.next_question()
        body: dict[str, Any] = {"model": self.model, "stream": stream,
                                "messages": [{"role": "user", "content": content}]}
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body


@dataclass
class Record:
    start: float  # wall clock (time.time) when the request was sent
    latency_s: float
    ttft_s: float | None
    status: int
    error: str | None
    response_id: str | None
    tokens: int | None


@dataclass
class Cell:
    target: str
    concurrency: int
    stream: bool
    run: int
    records: list[Record]
    elapsed_s: float
    mismatches: dict[str, str] = field(default_factory=dict)  # response_id -> reason (Kafka check)
    server: dict[str, Any] = field(default_factory=dict)  # the inference server's counters during the cell
    cpu_start: dict[str, float] | None = None  # CPU snapshot when the measured part began (after warm-up)
    started: float = 0.0  # perf_counter when the measured part began (its CPU window opens here)
    window_s: float = 0.0  # the CPU window: the requests and the work behind them (bench.settle)
    settle_s: float | None = None  # how long the work behind the requests took after the last answer
    cpu_ms: dict[str, float] = field(default_factory=dict)  # CPU ms per request, per process group
    metrics_start: Any = None  # the services' /metrics when the measured part began (bench.stages)
    stages: dict[str, Any] = field(default_factory=dict)  # per service: handlers, model, stores per request

    def stats(self) -> dict[str, Any]:
        ok = [r for r in self.records if r.error is None and r.response_id not in self.mismatches]
        errors: dict[str, int] = {}
        for r in self.records:
            reason = r.error or self.mismatches.get(r.response_id or "")
            if reason:
                errors[reason[:160]] = errors.get(reason[:160], 0) + 1
        return {
            "target": self.target, "concurrency": self.concurrency, "stream": self.stream, "run": self.run,
            "requests": len(self.records), "ok": len(ok), "errors": sum(errors.values()), "error_reasons": errors,
            "elapsed_s": round(self.elapsed_s, 3), "cpu_window_s": round(self.window_s or self.elapsed_s, 3),
            "settle_s": None if self.settle_s is None else round(self.settle_s, 3),
            "throughput_rps": round(len(ok) / self.elapsed_s, 2) if self.elapsed_s > 0 else None,
            "latency_ms": summary_ms([r.latency_s for r in ok]),
            "ttft_ms": summary_ms([r.ttft_s for r in ok if r.ttft_s is not None]) if self.stream else None,
            "cpu_ms_per_request": self.cpu_ms,
            "stages": self.stages,
        }


def session(limit: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit, force_close=False,
                                     keepalive_timeout=KEEPALIVE_S)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
                                 json_serialize=lambda o: orjson.dumps(o).decode())


async def one(http: aiohttp.ClientSession, target: Target, stream: bool, question: str | None = None) -> Record:
    body = target.body(stream, question)
    headers = {"Authorization": f"Bearer {target.api_key}", "Content-Type": "application/json"}
    start_wall, started = time.time(), time.perf_counter()
    try:
        async with http.post(f"{target.url}/chat/completions", data=orjson.dumps(body), headers=headers) as resp:
            if stream and resp.status == 200:
                return await _read_stream(resp, target, start_wall, started)
            raw = await resp.read()
            latency = time.perf_counter() - started
            data = _json(raw)
            if resp.status != 200:
                return Record(start_wall, latency, None, resp.status, f"HTTP {resp.status}: {_err(data, raw)}",
                              None, None)
            usage = data.get("usage") or {}
            return Record(start_wall, latency, None, 200, target.check(data), _rid(data), usage.get("total_tokens"))
    except (TimeoutError, aiohttp.ClientError) as exc:
        return Record(start_wall, time.perf_counter() - started, None, 0, f"{type(exc).__name__}: {exc}",
                      None, None)


async def _read_stream(resp: aiohttp.ClientResponse, target: Target, start_wall: float,
                       started: float) -> Record:
    ttft: float | None = None
    rid: str | None = None
    content, tokens, error = [], None, None
    async for line in resp.content:
        if not line.startswith(b"data: "):
            continue
        payload = line[6:].strip()
        if payload == b"[DONE]":
            break
        chunk = _json(payload)
        if "error" in chunk:
            error = f"stream error: {_err(chunk, payload)}"
            continue
        rid = rid or _rid(chunk)
        if chunk.get("usage"):
            tokens = chunk["usage"].get("total_tokens")
        for choice in chunk.get("choices") or []:
            piece = (choice.get("delta") or {}).get("content") or ""  # answer text (not reasoning_content)
            if piece and ttft is None:
                ttft = time.perf_counter() - started
            content.append(piece)
    latency = time.perf_counter() - started
    if error is None and not "".join(content):
        error = "stream without content"
    return Record(start_wall, latency, ttft, 200, error, rid, tokens)


async def run_cell(http: aiohttp.ClientSession, target: Target, *, concurrency: int, stream: bool, run: int,
                   max_requests: int, max_seconds: float, min_requests: int = 0, longest_s: float | None = None,
                   warmup: int = 0,
                   on_start: Callable[[], dict[str, float]] | None = None,
                   on_start_async: Callable[[], Awaitable[Any]] | None = None,
                   settle: Callable[[], Awaitable[Any]] | None = None) -> Cell:
    """Closed loop: `concurrency` clients, until `max_requests` are sent or `max_seconds` passed, but not before
    `min_requests` were sent unless `longest_s` (CELL_LONGEST times `max_seconds`) passed. `settle`: awaited after
    the warm-up, before the start snapshots (the warm-up's work behind the path is done by then)."""
    if warmup:
        await asyncio.gather(*(one(http, target, stream) for _ in range(warmup)))
    if settle is not None:
        await settle()
    metrics_start = await on_start_async() if on_start_async else None
    cpu_start = on_start() if on_start else None
    records: list[Record] = []
    sent = itertools.count()
    started = time.perf_counter()
    deadline = started + max_seconds
    longest = started + (CELL_LONGEST * max_seconds if longest_s is None else longest_s)

    async def client() -> None:
        while True:
            n, now = next(sent), time.perf_counter()
            if n >= max_requests or now >= longest or (now >= deadline and n >= min_requests):
                return
            records.append(await one(http, target, stream))

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return Cell(target.name, concurrency, stream, run, records, time.perf_counter() - started, cpu_start=cpu_start,
                metrics_start=metrics_start, started=started)


def _json(raw: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _err(data: dict[str, Any], raw: bytes) -> str:
    error = data.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error)[:200]
    return raw[:200].decode(errors="replace")


def _rid(data: dict[str, Any]) -> str | None:
    meta = data.get("moe") or {}
    if meta.get("response_id"):
        return str(meta["response_id"])
    cid = data.get("id")
    return cid.removeprefix("chatcmpl-") if isinstance(cid, str) else None
