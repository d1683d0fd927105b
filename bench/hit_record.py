"""Does an exact-cache hit wait for the record? (issue 52: the hit's p50 was 5.1 ms with the record, 3.3 without.)

    .venv/bin/python -m bench.hit_record [--rounds 6] [--hits 300]

One fleet as the bench runs it with the record and learning (bench.gateway_memory.start). The cache question answered
once, 300 hits to warm up, then ROUNDS pairs of windows of HITS hits one at a time (c=1), in alternating order: one
with codex-lineage consuming, one with it paused (SIGSTOP to its process group; SIGCONT after the window, and the next
window starts once its catch-up has ended: its CPU still for 0.5 s). Nothing of the record is lost: the paused
consumer reads the same records afterwards. Per window: the client's p50, the gateway's own time
(`x-moe-overhead-ms`, p50) and the gateway's CPU per hit. If the hit waited for the record, the paused windows would
be faster by that wait; if the record only competes for the cores, they are faster by its CPU's share at most."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import time

import aiohttp
import orjson

from bench import loadgen
from bench.scenarios import CACHE_QUESTION, FLEET_MODEL
from bench.soak import product_fleet


def cpu_s(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def window(http: aiohttp.ClientSession, url: str, token: str, n: int, gateway: int) -> tuple[float, ...]:
    """n hits one at a time: (client p50 ms, x-moe-overhead-ms p50, the gateway's CPU ms per hit)."""
    body = orjson.dumps({"model": FLEET_MODEL, "messages": [{"role": "user", "content": CACHE_QUESTION}]})
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latency, overhead, before = [], [], cpu_s(gateway)
    for _ in range(n):
        started = time.perf_counter()
        async with http.post(f"{url}/chat/completions", data=body, headers=headers) as resp:
            text = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}: {text[:200]!r}")
            overhead.append(float(resp.headers.get("x-moe-overhead-ms", "nan")))
        latency.append((time.perf_counter() - started) * 1000)
    return statistics.median(latency), statistics.median(overhead), (cpu_s(gateway) - before) * 1000 / n


async def still(pid: int) -> None:
    """Until the process's CPU stands still for 0.5 s (a resumed consumer has caught up)."""
    last = cpu_s(pid)
    while True:
        await asyncio.sleep(0.5)
        now = cpu_s(pid)
        if now - last < 0.005:
            return
        last = now


async def drive(args: argparse.Namespace, url: str, token: str, gateway: int, record: int) -> None:
    found: dict[str, list[tuple[float, ...]]] = {"running": [], "paused": []}
    async with loadgen.session(4) as http:
        await window(http, url, token, 300, gateway)
        for r in range(args.rounds):
            for state in ("running", "paused") if r % 2 == 0 else ("paused", "running"):
                await still(record)
                if state == "paused":
                    os.killpg(record, signal.SIGSTOP)
                try:
                    m = await window(http, url, token, args.hits, gateway)
                finally:
                    if state == "paused":
                        os.killpg(record, signal.SIGCONT)
                found[state].append(m)
                print(f"round {r} record {state:7s}: p50 {m[0]:.2f} ms, x-moe-overhead-ms p50 {m[1]:.2f}, gateway "
                      f"CPU {m[2]:.2f} ms/hit, load {os.getloadavg()[0]:.1f}", flush=True)
    for state, rows in found.items():
        p50 = [m[0] for m in rows]
        print(f"record {state}: p50 median {statistics.median(p50):.2f} ms (range {min(p50):.2f}-{max(p50):.2f}), "
              f"gateway CPU {statistics.median(m[2] for m in rows):.2f} ms/hit")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hit_record")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--hits", type=int, default=300, help="hits per window")
    args = parser.parse_args()
    with product_fleet("hitrec") as product:
        gateway, record = product.fleet["gateway"].proc, product.fleet["codex-lineage"].proc
        assert gateway is not None and record is not None
        asyncio.run(drive(args, product.gateway, product.token, gateway.pid, record.pid))

if __name__ == "__main__":
    main()
