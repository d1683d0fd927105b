"""tracemalloc in a fleet service, for bench.gateway_memory: this folder on a service's PYTHONPATH (and
BENCH_MEMTRACE_DIR set) starts tracemalloc at the interpreter's start (BENCH_MEMTRACE_FRAMES frames per site) and, on
SIGUSR1, writes a snapshot of what is alive after a full collection (`<dir>/<n>.snap`) and a line of counts
(`<dir>/<n>.json`: gc objects, asyncio tasks, traced MB); on SIGUSR2 (without tracemalloc too), calls glibc's
malloc_trim(0) and writes the resident memory before and after it (`<dir>/trim-<n>.json`): how much of the RSS is
memory the process freed but the allocator kept; with pymalloc's arenas and live blocks (memory Python's own
allocator keeps mapped: malloc_trim cannot give back an arena while one block in it is alive). Nothing happens
without BENCH_MEMTRACE_DIR."""

from __future__ import annotations

import os

if os.environ.get("BENCH_MEMTRACE_DIR"):
    import asyncio
    import gc
    import json
    import signal
    import tracemalloc
    from pathlib import Path
    from types import FrameType

    folder = Path(os.environ["BENCH_MEMTRACE_DIR"])
    taken, trims = [0], [0]

    def snapshot(_signum: int, _frame: FrameType | None) -> None:
        gc.collect()
        taken[0] += 1
        name = folder / str(taken[0])
        try:
            tasks = len(asyncio.all_tasks())
        except RuntimeError:  # no running loop in this thread
            tasks = -1
        tracemalloc.take_snapshot().dump(f"{name}.tmp")
        current, peak = tracemalloc.get_traced_memory()
        Path(f"{name}.json").write_text(json.dumps({"gc_objects": len(gc.get_objects()), "tasks": tasks,
                                                    "traced_mb": current / 2**20, "peak_mb": peak / 2**20}))
        os.replace(f"{name}.tmp", f"{name}.snap")  # last: the driver waits for it

    def anon_mb() -> float:
        status = Path("/proc/self/status").read_text().split("RssAnon:", 1)[1]
        return int(status.split()[0]) / 1024

    def pymalloc() -> dict[str, float]:
        """Python's small-object allocator (sys._debugmallocstats, written to fd 2): its arenas (1 MiB each, mapped
        until every block in them is free) and the bytes of live blocks in them, MB."""
        import sys
        import tempfile

        with tempfile.TemporaryFile() as out:
            saved = os.dup(2)
            os.dup2(out.fileno(), 2)
            try:
                sys._debugmallocstats()
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            out.seek(0)
            text = out.read().decode(errors="replace")
        found = {}
        for line in text.splitlines():
            label, _, value = line.partition("=")
            if label.startswith("# arenas allocated current"):
                found["arenas_mb"] = int(value.replace(",", "")) * 1.0  # 1 MiB each
            elif label.startswith("# bytes in allocated blocks"):
                found["blocks_mb"] = int(value.replace(",", "")) / 2**20
        return found

    def trim(_signum: int, _frame: FrameType | None) -> None:
        import ctypes

        counts = gc.get_count()
        collected = gc.collect()
        before = anon_mb()
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        trims[0] += 1
        name = folder / f"trim-{trims[0]}"
        Path(f"{name}.tmp").write_text(json.dumps({"anon_before_mb": before, "anon_after_mb": anon_mb(),
                                                   "pymalloc": pymalloc(), "gc_counts": counts,
                                                   "gc_unreachable": collected}))
        os.replace(f"{name}.tmp", f"{name}.json")

    signal.signal(signal.SIGUSR2, trim)
    if int(os.environ.get("BENCH_MEMTRACE_FRAMES", "0")) > 0:
        tracemalloc.start(int(os.environ["BENCH_MEMTRACE_FRAMES"]))
    signal.signal(signal.SIGUSR1, snapshot)
