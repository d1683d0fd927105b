"""bench.neo4j_threads: a process's CPU split by thread kind, read from /proc, here on a real child process that
burns CPU in a thread of its own name (the JVM names its threads the same way: "C2 CompilerThre", 15 characters)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.neo4j_threads import by_kind, kind_of, threads

pytestmark = pytest.mark.unit

BURNER = """
import ctypes, threading, time
def burn():
    ctypes.CDLL(None).prctl(15, b"C2 CompilerThread0")  # PR_SET_NAME, as the JVM names its compiler thread
    end = time.process_time() + 0.3
    while time.process_time() < end:
        pass
    print("burnt", flush=True)
    time.sleep(30)
threading.Thread(target=burn, daemon=True).start()
time.sleep(30)
"""


def test_the_jvm_thread_names_fall_into_their_kinds() -> None:
    assert [kind_of(n) for n in ("C2 CompilerThre", "C1 CompilerThre", "GC Thread#1", "G1 Refine#0",
                                 "neo4j.BoltWorke", "neo4j.BoltNetwo", "neo4j.CheckPoin")] == \
        ["jit-c2", "jit-c1", "gc", "gc", "bolt-worker", "bolt-network", "other"]


def test_a_threads_cpu_is_counted_under_its_kind() -> None:
    child = subprocess.Popen([sys.executable, "-c", BURNER], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "burnt"
        sums = by_kind({}, threads(child.pid))  # from the threads' starts
        assert sums["jit-c2"] >= 0.2, sums  # the 0.3 s the named thread burnt (ticks of 10 ms)
        assert sums["jit-c2"] > sums["other"], sums  # the main thread only slept
    finally:
        child.kill()
        child.wait()
