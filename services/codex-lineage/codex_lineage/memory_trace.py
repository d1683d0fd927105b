"""A diagnostic, off by default: with MOE_LINEAGE_TRACEMALLOC_S > 0 codex-lineage traces its Python allocations
(tracemalloc) and, every that many seconds, logs its resident memory, the traced total and the allocation sites
that grew most since the first snapshot (the baseline, taken one interval after the start, past the warm-up) and
since the previous one. Tracing costs CPU and memory of its own: for a soak or a leak hunt, never in production.

A resident set that grows while the traced total stays flat is growth outside Python's allocator (a C library, or
the C allocator keeping freed memory: try MALLOC_ARENA_MAX=2)."""

from __future__ import annotations

import asyncio
import logging
import os
import tracemalloc
from dataclasses import dataclass

log = logging.getLogger(__name__)
_PAGE = os.sysconf("SC_PAGE_SIZE")
_IGNORED = (tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
            tracemalloc.Filter(False, "<unknown>"))


def rss_mb() -> float:
    """This process's resident set (/proc/self/statm), MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE / 1e6


@dataclass
class Growth:
    site: str
    size_diff_kb: float
    count_diff: int
    size_kb: float


def top_growth(new: tracemalloc.Snapshot, old: tracemalloc.Snapshot, top: int, key: str = "lineno") -> list[Growth]:
    """The `top` sites whose traced size grew most from `old` to `new`."""
    stats = new.filter_traces(_IGNORED).compare_to(old.filter_traces(_IGNORED), key)
    grown = sorted((s for s in stats if s.size_diff > 0), key=lambda s: s.size_diff, reverse=True)[:top]
    return [Growth(_site(s.traceback), s.size_diff / 1e3, s.count_diff, s.size / 1e3) for s in grown]


def _site(traceback: tracemalloc.Traceback) -> str:
    return " <- ".join(f"{frame.filename.rsplit('site-packages/', 1)[-1]}:{frame.lineno}" for frame in traceback)


def _report(label: str, found: list[Growth]) -> str:
    return f"since {label}:\n" + "\n".join(
        f"  {g.size_diff_kb:+10.1f} kB {g.count_diff:+8d} blocks (now {g.size_kb:9.1f} kB)  {g.site}" for g in found)


async def trace_loop(interval_s: float, top: int, frames: int) -> None:
    """Snapshots every `interval_s`; each logged (logger codex_lineage.memory_trace, WARNING: it is seen at any
    log level) against the baseline and the previous snapshot."""
    if not tracemalloc.is_tracing():
        tracemalloc.start(frames)
    baseline: tracemalloc.Snapshot | None = None
    previous: tracemalloc.Snapshot | None = None
    started = asyncio.get_running_loop().time()
    while True:
        await asyncio.sleep(interval_s)
        snap = await asyncio.to_thread(tracemalloc.take_snapshot)
        traced, peak = tracemalloc.get_traced_memory()
        elapsed = asyncio.get_running_loop().time() - started
        parts = [f"memory at {elapsed:.0f} s: rss {rss_mb():.1f} MB, traced {traced / 1e6:.1f} MB (peak "
                 f"{peak / 1e6:.1f} MB)"]
        key = "traceback" if frames > 1 else "lineno"
        if baseline is not None:
            parts.append(_report("baseline", await asyncio.to_thread(top_growth, snap, baseline, top, key)))
        if previous is not None and previous is not baseline:
            parts.append(_report("previous", await asyncio.to_thread(top_growth, snap, previous, top, key)))
        log.warning("\n".join(parts))
        tracemalloc.reset_peak()
        baseline = baseline or snap
        previous = snap
