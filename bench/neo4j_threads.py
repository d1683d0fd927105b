"""A JVM's CPU split by thread kind while a command runs (issue 52: Neo4j's JIT threads took most of its CPU):

  python -m bench.neo4j_threads PID -- COMMAND ARG...

Reads /proc/PID/task/*/stat (user + system ticks per thread) before and after COMMAND, and prints the CPU each kind
of thread took meanwhile: the JIT compilers (C1, C2), the garbage collector, Neo4j's Bolt workers and network
threads, the rest. Threads that started and ended inside the window are not seen (the JVM keeps these kinds alive).
With `--jit-log` the JVM's compiled-method counters (`jcmd PID Compiler.codecache`, `jcmd PID PerfCounter.print`:
methods compiled, bailouts, invalidated) are read before and after too: they say whether the JIT keeps compiling new
code or recompiles the same.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import bench.infra  # noqa: F401 (puts deploy/local, fleetlib's home, on the path)

KINDS = (("jit-c2", ("C2 CompilerThre",)), ("jit-c1", ("C1 CompilerThre",)),
         ("gc", ("GC Thread", "G1 ", "VM Thread")), ("bolt-worker", ("neo4j.BoltWorke",)),
         ("bolt-network", ("neo4j.BoltNetwo",)))
COUNTERS = ("sun.ci.totalCompiles", "sun.ci.totalBailouts", "sun.ci.totalInvalidates", "sun.ci.osrCompiles",
            "sun.ci.standardCompiles", "sun.ci.nmethodCodeSize", "java.cls.loadedClasses", "java.cls.unloadedClasses")


def kind_of(name: str) -> str:
    for kind, prefixes in KINDS:
        if name.startswith(prefixes):
            return kind
    return "other"


def threads(pid: int) -> dict[str, float]:
    """CPU seconds so far of each live thread of PID, keyed by thread id and name."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except FileNotFoundError:  # the thread ended while we read
            continue
        name, rest = stat.split("(", 1)[1].rsplit(")", 1)
        fields = rest.split()
        out[f"{task.name}:{name}"] = (int(fields[11]) + int(fields[12])) / tick
    return out


def by_kind(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    sums: dict[str, float] = {}
    for key, cpu in after.items():
        kind = kind_of(key.split(":", 1)[1])
        sums[kind] = sums.get(kind, 0.0) + cpu - before.get(key, 0.0)
    return sums


def counters(pid: int) -> dict[str, int]:
    from fleetlib import jvm  # deploy/local (bench.infra puts it on the path)

    jcmd = str(Path(jvm.java()).with_name("jcmd"))  # the JDK that runs the fleet's Neo4j
    text = subprocess.run([jcmd, str(pid), "PerfCounter.print"], capture_output=True, text=True).stdout  # noqa: S603
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key in COUNTERS and value.strip().isdigit():
            out[key] = int(value)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.neo4j_threads", description=__doc__.splitlines()[0])
    parser.add_argument("pid", type=int)
    parser.add_argument("--jit-log", action="store_true", help="the JIT's counters before and after too")
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        parser.error("the command follows --")
    cut = argv.index("--")
    args, command = parser.parse_args(argv[:cut]), argv[cut + 1:]
    c0 = counters(args.pid) if args.jit_log else {}
    t0 = threads(args.pid)
    code = subprocess.run(command).returncode  # noqa: S603 (the command line given)
    t1 = threads(args.pid)
    c1 = counters(args.pid) if args.jit_log else {}
    sums = by_kind(t0, t1)
    total = sum(sums.values())
    print(f"pid {args.pid} CPU while the command ran: {total:.2f} s")
    for kind, cpu in sorted(sums.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:13} {cpu:7.2f} s  {100 * cpu / total if total else 0:5.1f} %")
    for key in c1:
        print(f"  {key} +{c1[key] - c0.get(key, 0)}")
    sys.exit(code)


if __name__ == "__main__":
    main()
