"""The gateway's memory against the number of requests (issue 52, item 6), as bench.soak's fleet runs it: real
processes with the record and learning, the zero-latency model, a fresh namespace and key. Closed-loop clients send
the soak's mix (full and trivial, streaming and not, cache hits, streams dropped after their first event); with
`--streams N` every checkpoint also holds N streams at once with the model slow (1 s each), as the bench's
streams-at-scale cells do. After a warm-up, at each checkpoint: the gateway process's resident memory (VmRSS,
RssAnon) and its growth since the warm-up; with `--trace K`, tracemalloc runs in the gateway (bench/memtrace on its
PYTHONPATH: inflates its RSS, so measure growth without it) and the K allocation sites that grew most since the
warm-up are printed (after a full collection), with the gateway's gc objects and asyncio tasks; with `--trim`, glibc's
malloc_trim(0) is called in the gateway after each checkpoint and its RssAnon before and after printed (memory freed
but kept by the allocator: the high-water mark of a burst, not live objects), with pymalloc's arenas against the live
blocks in them and what a full collection found unreachable; `--midway S` takes the snapshot (or the trim) S seconds
into each burst too, the streams open. Not a test:

    .venv/bin/python -m bench.gateway_memory 1000 2000 4000 [--concurrency 8] [--streams 256] [--trace 20 --frames 6]
    .venv/bin/python -m bench.gateway_memory 100 200 --streams 256 --trim --settle 12 [--no-warmup-burst] [--midway 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from bench import loadgen, streams
from bench.config import REPO
from bench.loadgen import Target
from bench.soak import MIX, _abandoned, product_fleet

log = logging.getLogger("bench.gateway_memory")
HOOK = REPO / "bench" / "memtrace"


def rollup(pid: int) -> dict[str, float]:
    """VmRSS and RssAnon of one process, MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {"rss": int(fields["VmRSS"].split()[0]) / 1024, "anon": int(fields["RssAnon"].split()[0]) / 1024}


def cpu_s(pid: int) -> float:
    """CPU seconds (user and system) one process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Driver:
    def __init__(self, http: aiohttp.ClientSession, targets: dict[str, Target]) -> None:
        self.http, self.targets, self.sent, self.errors = http, targets, 0, Counter[str]()

    async def until(self, total: int, concurrency: int) -> None:
        """Closed-loop clients through the soak's mix until `total` requests were sent in all."""
        async def client() -> None:
            while self.sent < total:
                kind, stream = MIX[self.sent % len(MIX)]
                self.sent += 1
                if kind == "cancel":
                    error = await _abandoned(self.http, self.targets["full"])
                else:
                    error = (await loadgen.one(self.http, self.targets[kind], stream)).error
                if error:
                    self.errors[f"{kind}: {error[:80]}"] += 1

        await asyncio.gather(*(client() for _ in range(concurrency)))


async def burst(target: Target, llm_url: str, n: int, midway: Callable[[], Awaitable[None]] | None = None,
                midway_s: float = 0.8) -> int:
    """N streams at once with the model slow (the bench's streams cells); how many were held (why the others were
    not: logged). `midway`: called `midway_s` into the burst, the streams still open."""
    holding = asyncio.ensure_future(streams.burst(target, llm_url, n, 1.0, loadgen.REQUEST_TIMEOUT_S + 30))
    if midway is not None:
        await asyncio.sleep(midway_s)
        await midway()
    held = await holding
    failed = Counter((s.error or ("dropped frames" if s.dropped() else "reordered"))[:100]
                     for s in held if not s.held())
    if failed:
        log.info("burst of %d: not held %s", n, dict(failed.most_common(3)))
    return sum(s.held() for s in held)


async def written(path: Path, pid: int) -> None:
    """Wait until the gateway has written `path` (bench/memtrace renames a finished file into place)."""
    end = time.monotonic() + 120
    while not await asyncio.to_thread(path.exists):
        if time.monotonic() > end:
            raise TimeoutError(f"no {path} from the gateway (pid {pid})")
        await asyncio.sleep(0.2)


async def trimmed(pid: int, folder: Path, n: int) -> str:
    """malloc_trim(0) in the gateway (bench/memtrace, on SIGUSR2): its RssAnon before and after."""
    os.kill(pid, signal.SIGUSR2)
    path = folder / f"trim-{n}.json"
    await written(path, pid)
    found = json.loads(path.read_text())
    arenas = found.get("pymalloc") or {}
    return (f"malloc_trim: anon {found['anon_before_mb']:.1f} -> {found['anon_after_mb']:.1f} MB; pymalloc arenas "
            f"{arenas.get('arenas_mb', 0):.0f} MB holding {arenas.get('blocks_mb', 0):.1f} MB of live blocks; a full "
            f"collection found {found.get('gc_unreachable')} unreachable objects (gc counts {found.get('gc_counts')})")


async def snapshot(pid: int, folder: Path, n: int) -> tuple[tracemalloc.Snapshot, dict[str, Any]]:
    """The gateway's tracemalloc snapshot number `n` (bench/memtrace, on SIGUSR1) and its counts."""
    os.kill(pid, signal.SIGUSR1)
    path = folder / f"{n}.snap"
    await written(path, pid)
    counts = json.loads((folder / f"{n}.json").read_text())
    return await asyncio.to_thread(tracemalloc.Snapshot.load, str(path)), counts


def grown(since: tracemalloc.Snapshot, now: tracemalloc.Snapshot, top: int) -> None:
    """The allocation sites that grew most since `since` (every frame of each with --frames > 1)."""
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__),
              tracemalloc.Filter(False, "<frozen importlib._bootstrap*")]
    now, since = now.filter_traces(ignore), since.filter_traces(ignore)
    for stat in now.compare_to(since, "traceback")[:top]:
        print(f"    {stat.size_diff / 1024:+9.1f} KB {stat.count_diff:+7d} blocks  (now {stat.size / 1024:.0f} KB)")
        for frame in stat.traceback:
            print(f"        {frame}")


async def drive(args: argparse.Namespace, targets: dict[str, Target], llm_url: str, pid: int,
                folder: Path | None) -> None:
    async with loadgen.session(args.concurrency + 8) as http:
        driver = Driver(http, targets)
        await loadgen.one(http, targets["cache"], False)  # the cache path's question answered once
        await driver.until(args.warmup, args.warmup_concurrency or args.concurrency)
        if args.streams and args.warmup_burst:
            await burst(targets["trivial"], llm_url, args.streams)  # its first burst is warm-up too
        trims = 0
        if args.trim and folder is not None:  # the warmed gateway trimmed too: its growth from there
            trims += 1
            print(f"    warmed: {await trimmed(pid, folder, trims)}", flush=True)
        base, cpu_base = rollup(pid), cpu_s(pid)
        shots = [1]  # the gateway numbers its snapshots 1, 2, ...
        since = (await snapshot(pid, folder, 1))[0] if folder and args.trace else None
        print(f"after {driver.sent} warm-up requests: Rss {base['rss']:.1f} MB, anon {base['anon']:.1f}", flush=True)
        for n in args.checkpoints:
            await driver.until(args.warmup + n, args.concurrency)
            midway = None
            if args.midway and folder is not None and since is None and args.trim:
                async def midway() -> None:  # the open streams' memory, what a full collection frees of it
                    nonlocal trims
                    assert folder is not None
                    trims += 1
                    print(f"  midway through the burst: {await trimmed(pid, folder, trims)}", flush=True)
            if args.midway and folder is not None and since is not None:
                async def midway() -> None:  # what the open streams hold, against the warm-up
                    assert folder is not None
                    shots[0] += 1
                    snap, counts = await snapshot(pid, folder, shots[0])
                    print(f"  midway through the burst: gc objects {counts['gc_objects']}, tasks {counts['tasks']}, "
                          f"traced {counts['traced_mb']:.1f} MB", flush=True)
                    assert since is not None
                    grown(since, snap, args.trace)
            held = await burst(targets["trivial"], llm_url, args.streams, midway, args.midway) if args.streams else 0
            await asyncio.sleep(args.settle)  # abandoned streams' Cancel after the resume grace
            now = rollup(pid)
            line = (f"{n:6d} requests{f' + {held}/{args.streams} streams held' if args.streams else ''}: "
                    f"Rss {now['rss']:.1f} MB ({now['rss'] - base['rss']:+.1f}), anon {now['anon']:.1f} "
                    f"({now['anon'] - base['anon']:+.1f}); CPU {cpu_s(pid) - cpu_base:.1f} s since the warm-up; "
                    f"errors {sum(driver.errors.values())}")
            if folder is not None and since is not None:
                shots[0] += 1
                snap, counts = await snapshot(pid, folder, shots[0])
                print(f"{line}; gc objects {counts['gc_objects']}, tasks {counts['tasks']}, traced "
                      f"{counts['traced_mb']:.1f} MB", flush=True)
                grown(since, snap, args.trace)
            else:
                print(line, flush=True)
            if args.trim and folder is not None:
                trims += 1
                print(f"    {await trimmed(pid, folder, trims)}", flush=True)
        for error, count in driver.errors.most_common(5):
            print(f"  error x{count}: {error}")


def run(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="gateway-memtrace-")) if args.trace or args.trim else None
    frames = args.frames if args.trace else 0  # --trim alone: no tracemalloc (it inflates the RSS)
    gateway_env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(HOOK), os.environ.get("PYTHONPATH")])),
                   "BENCH_MEMTRACE_DIR": str(folder), "BENCH_MEMTRACE_FRAMES": str(frames)} if folder else {}
    gateway_env |= dict(pair.split("=", 1) for pair in args.gateway_env)
    with product_fleet("gwmem", gateway_env=gateway_env) as product:
        proc = product.fleet["gateway"].proc
        assert proc is not None
        # one worker: uvicorn serves in this process
        asyncio.run(drive(args, product.targets(), product.llm_url, proc.pid, folder))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.gateway_memory")
    parser.add_argument("checkpoints", type=int, nargs="*", default=[1000, 2000, 4000])
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8, help="closed-loop clients")
    parser.add_argument("--warmup-concurrency", type=int, default=0, help="the warm-up's clients (0: --concurrency)")
    parser.add_argument("--warmup-burst", action=argparse.BooleanOptionalAction, default=True,
                        help="a burst of --streams in the warm-up too (--no-warmup-burst: the bench's order, where "
                             "the warmed fleet has seen no burst yet)")
    parser.add_argument("--streams", type=int, default=0, help="N streams held at once at each checkpoint")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after each checkpoint's traffic")
    parser.add_argument("--trace", type=int, default=0, help="tracemalloc in the gateway: the N sites that grew most")
    parser.add_argument("--midway", type=float, default=0.0, metavar="S",
                        help="with --streams and --trace (or --trim): also a snapshot (or a trim) S seconds into each "
                             "burst (what the open streams hold)")
    parser.add_argument("--trim", action="store_true", help="malloc_trim(0) in the gateway after each checkpoint")
    parser.add_argument("--gateway-env", action="append", default=[], metavar="KEY=VALUE",
                        help="the gateway's own environment (e.g. MOE_MALLOC_TRIM_INTERVAL_S=0)")
    parser.add_argument("--frames", type=int, default=6, help="with --trace: each site's stack depth")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    run(parser.parse_args())
