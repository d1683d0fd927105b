"""Streams at scale (issue 29, item 5): N SSE streams opened at once against one target and held until each
ends, the model slow (the inference server's `/_slow`: every completion takes `model_s` seconds, a streamed one
spread over its frames), the reply a numbered word sequence. Each stream is checked frame by frame: the words
must arrive complete and in order, then a chunk with a finish reason, then `[DONE]`.

A stream *holds* when it got HTTP 200 and every frame: no word missing (dropped), none out of order
(reordered), the finish chunk and `[DONE]` there. Targets: `direct` (the slow model itself: the load
generator's own ceiling), `litellm` when it runs, and the fleet's `trivial` path (router, one direct expert
call, the fast path; the gateway streams the answer). CPU is counted per stream, per process group, like the
cells (CPU seconds from /proc, not wall time).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from bench.loadgen import KEEPALIVE_S, Target
from bench.stats import summary_ms

WORDS = 40
REPLY = " ".join(f"w{i:03d}" for i in range(WORDS))  # what the slow model answers, word by word
_WORD = re.compile(r"\bw(\d{3})\b")
TARGETS = ("direct", "litellm", "trivial")


@dataclass
class Stream:
    status: int = 0
    error: str | None = None
    frames: int = 0  # `data:` frames received
    words: list[int] = field(default_factory=list)  # the numbered words, in the order they came
    finished: bool = False  # a chunk with a finish reason
    done: bool = False  # `data: [DONE]`
    latency_s: float = 0.0

    def dropped(self) -> int:
        """Frames that never came: missing words, a missing finish chunk, a missing [DONE] (counted for streams
        that ended without an error frame: one that did is failed, e.g. its deadline passed)."""
        return WORDS - len(set(self.words) & set(range(WORDS))) + (not self.finished) + (not self.done)

    def reordered(self) -> int:
        """Words that came after a later one (or again)."""
        return sum(1 for a, b in zip(self.words, self.words[1:], strict=False) if b <= a)

    def held(self) -> bool:
        return self.status == 200 and self.error is None and self.dropped() == 0 and self.reordered() == 0


async def one(http: aiohttp.ClientSession, target: Target) -> Stream:
    out = Stream()
    headers = {"Authorization": f"Bearer {target.api_key}", "Content-Type": "application/json"}
    started = time.perf_counter()
    try:
        async with http.post(f"{target.url}/chat/completions", data=orjson.dumps(target.body(True)),
                             headers=headers) as resp:
            out.status = resp.status
            if resp.status != 200:
                out.error = f"HTTP {resp.status}"
                return out
            text: list[str] = []
            async for line in resp.content:
                if not line.startswith(b"data: "):
                    continue
                out.frames += 1
                payload = line[6:].strip()
                if payload == b"[DONE]":
                    out.done = True
                    break
                chunk = orjson.loads(payload)
                if "error" in chunk:
                    out.error = f"stream error: {str(chunk['error'])[:120]}"
                for choice in chunk.get("choices") or []:
                    text.append((choice.get("delta") or {}).get("content") or "")
                    out.finished = out.finished or bool(choice.get("finish_reason"))
            out.words = [int(w) for w in _WORD.findall("".join(text))]
    except (TimeoutError, aiohttp.ClientError, orjson.JSONDecodeError) as exc:
        out.error = f"{type(exc).__name__}: {str(exc)[:120]}"
    finally:
        out.latency_s = time.perf_counter() - started
    return out


async def hold(target: Target, n: int, timeout_s: float) -> list[Stream]:
    """N streams at once, each on its own connection."""
    connector = aiohttp.TCPConnector(limit=n + 8, limit_per_host=n + 8, keepalive_timeout=KEEPALIVE_S)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s)) as http:
        return list(await asyncio.gather(*(one(http, target) for _ in range(n))))


def summary(target: str, n: int, streams: list[Stream], elapsed_s: float, cpu_ms: dict[str, float]) -> dict[str, Any]:
    errors = Counter((s.error or ("dropped frames" if s.dropped() else "reordered"))[:100]
                     for s in streams if not s.held())
    return {
        "target": target, "streams": n, "held": sum(s.held() for s in streams),
        "dropped_frames": sum(s.dropped() for s in streams if s.status == 200 and s.error is None),
        "reordered_frames": sum(s.reordered() for s in streams),
        "failed": sum(s.status != 200 or s.error is not None for s in streams),
        "frames_per_stream": round(sum(s.frames for s in streams) / max(n, 1), 1),
        "elapsed_s": round(elapsed_s, 2), "latency_ms": summary_ms([s.latency_s for s in streams]),
        "cpu_ms_per_stream": cpu_ms, "errors": dict(errors.most_common(3)),
    }


async def set_slow(llm_url: str, seconds: float) -> None:
    async with aiohttp.ClientSession() as http, http.post(
            f"{llm_url}/_slow", data=orjson.dumps({"seconds": seconds, "replies": {"expert-model": REPLY}} if seconds
                                                  else {})) as resp:
        resp.raise_for_status()


async def burst(target: Target, llm_url: str, n: int, model_s: float, timeout_s: float) -> list[Stream]:
    """N streams at once against one target, the model slow meanwhile (as a cell of `run`, nothing counted)."""
    await set_slow(llm_url, model_s)
    try:
        return await hold(target, n, timeout_s)
    finally:
        await set_slow(llm_url, 0.0)


CpuSnapshot = Callable[[], dict[str, float]]


async def run(targets: dict[str, Target], llm_url: str, counts: list[int], model_s: float, timeout_s: float,
              cpu: CpuSnapshot, idle: dict[str, float], log: Any) -> list[dict[str, Any]]:
    """Every target at every N (smallest first), the model slow meanwhile."""
    from bench.measure import cpu_per_request

    await set_slow(llm_url, model_s)
    out = []
    try:
        for n in counts:
            for name in (t for t in TARGETS if t in targets):
                before, started = cpu(), time.perf_counter()
                streams = await hold(targets[name], n, timeout_s)
                elapsed = time.perf_counter() - started
                row = summary(name, n, streams, elapsed, cpu_per_request(cpu(), before, n, elapsed, idle))
                out.append(row)
                log.info("streams %-7s N=%-4d held %d, dropped frames %d, reordered %d, failed %d (%.1f s)",
                         name, n, row["held"], row["dropped_frames"], row["reordered_frames"], row["failed"],
                         elapsed)
    finally:
        await set_slow(llm_url, 0.0)
    return out
