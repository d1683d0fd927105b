"""Freed memory back to the system (moe_core.runtime.memory_trim): what a burst freed stays resident with glibc's
malloc until it is trimmed; the trim gives it back; the loop is off at interval 0."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from moe_core.runtime import memory_trim
from moe_core.runtime.memory_trim import Trimming

pytestmark = pytest.mark.unit
glibc = pytest.mark.skipif(memory_trim._malloc_trim() is None, reason="no glibc malloc_trim (musl)")


BURST = """
import gc
from pathlib import Path
from moe_core.runtime.memory_trim import trim

def anon_mb():
    return int(Path("/proc/self/status").read_text().split("RssAnon:", 1)[1].split()[0]) / 1024

trim()
start = anon_mb()
burst = [bytes(4000) for _ in range(16_000)]  # ~64 MB in malloc's heap (objects past pymalloc's 512 bytes)
pinned = bytes(4000)  # allocated after them: the heap's top stays in use, so free() alone cannot shrink it
peak = anon_mb()
del burst
gc.collect()
kept = anon_mb()
trimmed = trim()
print(start, peak, kept, anon_mb(), trimmed, len(pinned))
"""


@glibc
def test_a_bursts_freed_memory_stays_resident_until_trimmed() -> None:
    """In a process of its own: the main thread's heap, no other test's arenas (a thread's arena gives memory back
    by itself, and a trim here would change what other tests in this process measure)."""
    out = subprocess.run([sys.executable, "-c", BURST], capture_output=True, text=True, check=True).stdout.split()
    start, peak, kept, after = (float(x) for x in out[:4])
    assert out[4] == "True"
    assert peak - start > 48, (start, peak)
    assert peak - kept < 16, f"free() gave back {peak - kept:.1f} MB by itself"  # the high-water mark stays
    assert kept - after > 40, f"the trim gave back only {kept - after:.1f} MB"


def test_the_loop_is_off_at_interval_zero_and_runs_otherwise() -> None:
    assert Trimming(0).loop is None
    trimming = Trimming(0.001)
    if memory_trim._malloc_trim() is None:
        assert trimming.loop is None
        return

    async def run() -> None:
        await trimming.start()
        await asyncio.sleep(0.05)
        task = trimming.loop._task if trimming.loop is not None else None
        assert task is not None and not task.done()
        await trimming.close()
        assert trimming.loop is not None and trimming.loop._task is None

    asyncio.run(run())


@glibc
def test_every_service_trims_while_it_runs_and_stops_trimming_when_it_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared runtime's lifespan (create_service_app) runs the loop for every service, not only those that once
    wired it themselves (the gateway, codex-lineage, the planner)."""
    from moe_core.runtime.bus import Bus
    from moe_core.runtime.service import create_service_app
    from moe_core.runtime.settings import FleetSettings

    calls: list[float] = []
    monkeypatch.setattr(memory_trim, "trim", lambda: calls.append(1.0) or True)
    settings = FleetSettings(service_name="any-service", malloc_trim_interval_s=0.01)
    app = create_service_app(settings, Bus(settings), manage_broker=False)

    async def run() -> int:
        async with app.router.lifespan_context(app):
            await asyncio.sleep(0.3)
        stopped = len(calls)
        await asyncio.sleep(0.1)
        assert len(calls) == stopped  # closed with the service
        return stopped

    assert asyncio.run(run()) >= 2
