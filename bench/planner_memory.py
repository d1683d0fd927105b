"""The planner's memory against the number of full-pipeline requests (issue 52), as bench.soak's fleet runs it (real
processes with the record and learning, the zero-latency model, a fresh namespace and key) but with the planner's
settings as `make bench` runs them (not the soak's small cache bounds) unless `--planner-env` says otherwise.
Closed-loop clients send only distinct full-path questions (each a planner model call, a cache store and a cache
lookup). After a warm-up, at each checkpoint: the planner's VmRSS and RssAnon and their growth since the warm-up;
with `--trace K` tracemalloc runs in the planner (bench/memtrace: it inflates the RSS, so measure growth without it)
and the K allocation sites that grew most since the warm-up are printed; with `--trim` glibc's malloc_trim(0) is
called in the planner after each checkpoint (memory freed but kept by the allocator). Not a test:

    .venv/bin/python -m bench.planner_memory 500 1000 2000 [--concurrency 4] [--burst 128] [--trace 15] [--trim]
        [--planner-env MOE_MALLOC_TRIM_INTERVAL_S=0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bench import loadgen, procs
from bench.gateway_memory import HOOK, grown, rollup, snapshot, trimmed
from bench.infra import connect
from bench.loadgen import Target
from bench.record import record_env
from bench.runner import _delete_topics, _key, fleet_env
from bench.scenarios import SCRIPT
from bench.soak import PRODUCT, ProductFleet
from tests.support.fleet import Fleet, ServiceProcess, free_port

log = logging.getLogger("bench.planner_memory")
GCTRACE = Path(__file__).resolve().parent / "gctrace"


@contextmanager
def fleet(planner_env: dict[str, str]) -> Iterator[ProductFleet]:
    """bench.soak.product_fleet with the planner's environment instead of the gateway's and without the soak's
    small cache bounds."""
    eps = connect()
    namespace = f"plmem{uuid.uuid4().hex[:8]}"
    llm_url, llm = procs.start_llm_server(SCRIPT)
    started, key_id, records = None, None, ExitStack()
    try:
        env = {**records.enter_context(record_env(eps, namespace)), **fleet_env(eps, namespace, llm_url, {})}
        started = Fleet(env, gateway_workers=1, extra=PRODUCT, own_principals=False)
        started.services["planner"].env |= planner_env
        for service in started.services.values():
            service.start()
        for service in started.services.values():
            ready(service)
        key_id, token = asyncio.run(_key(eps["postgres"], f"tenant-{namespace}"))
        yield ProductFleet(started, token, llm_url, llm, namespace)
    finally:
        if started is not None:
            started.stop()
        records.close()
        llm.stop()
        if key_id:
            asyncio.run(_key(eps["postgres"], "", revoke=key_id))
        asyncio.run(_delete_topics(eps["kafka"], namespace))


def ready(service: ServiceProcess) -> None:
    """Ready, or started once more when it exited while starting (a loaded broker's metadata race, as
    tests.support.fleet.Fleet.start does); a generous wait: tracemalloc slows the planner's imports down a lot."""
    try:
        procs.wait_http(f"{service.url}/ready", procs._Started(service), 900)
    except RuntimeError:
        if service.proc is None or service.proc.poll() is None:
            raise
        log.warning("%s exited while starting; starting it again", service.name)
        service.port = free_port()
        service.env["MOE_HTTP_PORT"] = str(service.port)
        service.start()
        procs.wait_http(f"{service.url}/ready", procs._Started(service), 900)


def cpu_s(pid: int) -> float:
    """The process's user and system CPU seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def collections(path: Path | None) -> str:
    """The planner's collections so far (bench/gctrace), per generation: count and CPU ms."""
    if path is None or not path.exists():
        return ""
    found = json.loads(path.read_text())["generations"]
    return "; gc " + ", ".join(f"gen{g} {v['collections']}x {v['cpu_ms']:.0f} ms (max {v['max_ms']:.0f})"
                               for g, v in found.items())


async def until(http: loadgen.aiohttp.ClientSession, target: Target, total: int, concurrency: int,
                errors: Counter[str]) -> None:
    """Closed-loop clients of distinct full questions until `total` were sent in all (target.counter)."""
    sent = [0]

    async def client() -> None:
        while sent[0] < total:
            sent[0] += 1
            error = (await loadgen.one(http, target, False)).error
            if error:
                errors[error[:80]] += 1

    await asyncio.gather(*(client() for _ in range(concurrency)))


async def drive(args: argparse.Namespace, target: Target, pid: int, folder: Path | None,
                gctrace: Path | None) -> None:
    errors: Counter[str] = Counter()
    async with loadgen.session(args.concurrency + 8) as http:
        await until(http, target, args.warmup, args.concurrency, errors)
        base, cpu, done = rollup(pid), cpu_s(pid), 0
        since = (await snapshot(pid, folder, 1))[0] if folder and args.trace else None
        print(f"after {args.warmup} warm-up requests: Rss {base['rss']:.1f} MB, anon {base['anon']:.1f}", flush=True)
        for i, n in enumerate(args.checkpoints, start=2):
            done_before = done
            await until(http, target, n - done, args.concurrency, errors)
            if args.burst:  # a burst's high-water mark, as the bench's streams-at-scale cells make one
                await until(http, target, args.burst, args.burst, errors)
            await asyncio.sleep(args.settle)
            now, spent = rollup(pid), cpu_s(pid) - cpu
            cpu, done = cpu + spent, n
            line = (f"{n:6d} requests: Rss {now['rss']:.1f} MB ({now['rss'] - base['rss']:+.1f}), anon "
                    f"{now['anon']:.1f} ({now['anon'] - base['anon']:+.1f}); planner CPU "
                    f"{spent * 1e3 / (n - done_before):.1f} ms a request; errors {sum(errors.values())}"
                    f"{collections(gctrace)}")
            if folder is not None and since is not None:
                snap, counts = await snapshot(pid, folder, i)
                print(f"{line}; gc objects {counts['gc_objects']}, tasks {counts['tasks']}, traced "
                      f"{counts['traced_mb']:.1f} MB", flush=True)
                grown(since, snap, args.trace)
            else:
                print(line, flush=True)
            if args.trim and folder is not None:
                print(f"    {await trimmed(pid, folder, i - 1)}", flush=True)
        for error, count in errors.most_common(5):
            print(f"  error x{count}: {error}")


def run(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="planner-memtrace-")) if args.trace or args.trim else None
    frames = args.frames if args.trace else 0
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(HOOK), os.environ.get("PYTHONPATH")])),
           "BENCH_MEMTRACE_DIR": str(folder), "BENCH_MEMTRACE_FRAMES": str(frames)} if folder else {}
    gctrace = Path(tempfile.mkdtemp(prefix="planner-gctrace-")) / "gc.json" if args.gc else None
    if gctrace is not None:  # its own sitecustomize: not with --trace/--trim (one sitecustomize is imported)
        env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(GCTRACE), os.environ.get("PYTHONPATH")])),
               "BENCH_GCTRACE_FILE": str(gctrace)}
    env |= dict(pair.split("=", 1) for pair in args.planner_env)
    with fleet(env) as product:
        proc = product.fleet["planner"].proc
        assert proc is not None
        asyncio.run(drive(args, product.targets()["full"], proc.pid, folder, gctrace))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.planner_memory")
    parser.add_argument("checkpoints", type=int, nargs="*", default=[500, 1000, 2000])
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4, help="closed-loop clients")
    parser.add_argument("--burst", type=int, default=0, help="N more full requests at once before each checkpoint")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds after each checkpoint's traffic")
    parser.add_argument("--trace", type=int, default=0, help="tracemalloc in the planner: the N sites that grew most")
    parser.add_argument("--trim", action="store_true", help="malloc_trim(0) in the planner after each checkpoint")
    parser.add_argument("--gc", action="store_true", help="the planner's collections (bench/gctrace; not with "
                        "--trace or --trim)")
    parser.add_argument("--planner-env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--frames", type=int, default=4, help="with --trace: each site's stack depth")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    run(parser.parse_args())
