"""Freed memory given back to the system now and then (glibc's malloc_trim(0)).

What a Python process frees after a burst (the gateway: 256 streams at once, a cell of 64 concurrent clients; their
connections, parsed messages, SSE frames) goes back to glibc's malloc, which keeps the free pages inside its heaps
for reuse: the process's resident memory stays at the burst's high-water mark although the objects are gone, and a
run's "growth" is its largest burst, not a leak (bench.gateway_memory: tracemalloc saw the live heap flat across
the requests while RssAnon stayed up after each burst). malloc_trim(0) hands those pages back (madvise): the same
objects stay where they are, nothing is freed that is alive. It runs in a worker thread (ctypes releases the GIL:
the event loop goes on; an allocation meanwhile waits for the heap's lock), every MOE_MALLOC_TRIM_INTERVAL_S.
Without glibc (musl has no malloc_trim) it does nothing."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable
from functools import cache

from moe_core.runtime.periodic import Periodic

log = logging.getLogger(__name__)


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
    except OSError:
        return None
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def trim() -> bool:
    """Return the free pages of every malloc heap to the system; True when glibc released some."""
    found = _malloc_trim()
    return bool(found(0)) if found is not None else False


class Trimming:
    """The background loop trimming every `interval_s`, as a service's start-up and shut-down hooks; nothing when
    the interval is 0 or without glibc."""

    def __init__(self, interval_s: float) -> None:
        self.loop = Periodic(lambda: asyncio.to_thread(trim), lambda: interval_s, first=False, what="malloc_trim") \
            if interval_s > 0 and _malloc_trim() is not None else None

    async def start(self) -> None:
        if self.loop is not None:
            self.loop.start()

    async def close(self) -> None:
        if self.loop is not None:
            await self.loop.close()
