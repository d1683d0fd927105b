"""The broker's own account of its work (issue 52): requests by type with the time they took, read over JMX from the
running JVM (bench/jmx/KafkaRequests.java: the attach API starts its local management agent, so no flag at the
broker's start and no port), its Java threads' CPU by kind (network, request handlers, group coordinator, ...), and
the JVM's native threads' CPU (GC, JIT compilers) from /proc. One long-lived `java` process serves every snapshot, so
a snapshot costs the broker only a few MBean reads (`python -m bench.kafka_requests PID` prints two snapshots' cost).

    with BrokerProbe(pid) as probe:
        before = probe.snapshot(); ...; after = probe.snapshot()
        usage(after, before)   # {"cpu_s": ..., "requests": {"Fetch": n, ...}, "threads": {...}, "local_ms": ...}
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.config import REPO

JAVA_FILE = Path(__file__).resolve().parent / "jmx" / "KafkaRequests.java"
TICKS = os.sysconf("SC_CLK_TCK")
PROBE = "JMX (this probe)"
KINDS = (  # Java thread name (part) -> kind; the first that matches
    ("request-handler", "request handlers"), ("network-thread", "network threads"), ("acceptor", "acceptors"),
    ("group-coordinator", "group coordinator"), ("ExpirationReaper", "purgatory reapers"),
    ("raft", "KRaft"), ("controller", "KRaft"), ("quorum", "KRaft"), ("kafka-scheduler", "scheduler"),
    ("RMI", PROBE), ("JMX", PROBE), ("Attach", PROBE),
    ("log-cleaner", "log cleaner"), ("share", "share groups"),
)
NATIVE = (("GC Thread", "GC"), ("G1 ", "GC"), ("C1 Compiler", "JIT"), ("C2 Compiler", "JIT"),
          ("VM Thread", "VM thread (serial GC, safepoints)"))


@dataclass
class Snapshot:
    at: float
    cpu_s: float  # the whole JVM (utime + stime)
    requests: dict[str, float] = field(default_factory=dict)  # request type -> count (all versions)
    times_ms: dict[str, float] = field(default_factory=dict)  # "Fetch TotalTimeMs" -> sum of the histogram
    threads: dict[str, float] = field(default_factory=dict)  # kind -> CPU seconds


def _kind(name: str, table: tuple[tuple[str, str], ...]) -> str | None:
    return next((kind for part, kind in table if part in name), None)


def _proc_cpu(pid: int) -> tuple[float, dict[str, float]]:
    """The JVM's CPU seconds and its native threads' (GC, JIT) from /proc."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = (int(stat[11]) + int(stat[12])) / TICKS
    native: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            comm = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        kind = _kind(comm, NATIVE)
        if kind:
            native[kind] = native.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / TICKS
    return total, native


class BrokerProbe:
    """One `java` process attached to the broker's JVM; `snapshot()` reads its counters now."""

    def __init__(self, pid: int) -> None:
        from fleetlib import jvm  # deploy/local (bench.infra puts it on the path)

        self.pid = pid
        self._java = subprocess.Popen([jvm.java(), str(JAVA_FILE), str(pid)], stdin=subprocess.PIPE,  # noqa: S603
                                      stdout=subprocess.PIPE, text=True, cwd=REPO)

    def __enter__(self) -> BrokerProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._java.stdin:
            self._java.stdin.close()
        self._java.wait(timeout=30)

    def snapshot(self) -> Snapshot:
        assert self._java.stdin and self._java.stdout
        self._java.stdin.write("\n")
        self._java.stdin.flush()
        snap = Snapshot(at=0.0, cpu_s=0.0)
        java_s = 0.0
        for line in iter(self._java.stdout.readline, ""):
            parts = line.rstrip("\n").split("\t")
            if parts[0] == "END":
                snap.at = time.monotonic()
                break
            if parts[0] == "req":
                _, request, _version, metric, count, mean = parts
                if request == "Fetch":
                    continue  # FetchConsumer + FetchFollower, which are counted
                if metric == "RequestsPerSec":
                    snap.requests[request] = snap.requests.get(request, 0.0) + float(count)
                else:
                    key = f"{request} {metric}"
                    snap.times_ms[key] = snap.times_ms.get(key, 0.0) + float(count) * float(mean)
            elif parts[0] == "thread":
                seconds = int(parts[2]) / 1e9
                kind = _kind(parts[1], KINDS) or re.sub(r"\d+", "N", parts[1])
                snap.threads[kind] = snap.threads.get(kind, 0.0) + seconds
                java_s += seconds
        else:
            raise RuntimeError(f"the JMX reader of the broker (pid {self.pid}) ended")
        snap.cpu_s, native = _proc_cpu(self.pid)
        snap.threads |= native
        snap.threads["other native (VM)"] = max(snap.cpu_s - java_s - sum(native.values()), 0.0)
        return snap


def _diff(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0) > 0}


def usage(after: Snapshot, before: Snapshot, per: float = 1.0) -> dict[str, Any]:
    """What the broker did between two snapshots, divided by `per` (requests served, or seconds for a rate):
    CPU ms (without its threads serving the probe's JMX reads), its requests by type, the time they spent (ms) and its
    threads' CPU ms by kind."""
    probe_s = after.threads.get(PROBE, 0.0) - before.threads.get(PROBE, 0.0)
    return {
        "seconds": round(after.at - before.at, 2),
        "cpu_ms": round((after.cpu_s - before.cpu_s - probe_s) * 1000 / per, 2),
        "requests": {k: round(v / per, 2) for k, v in sorted(_diff(after.requests, before.requests).items(),
                                                             key=lambda kv: -kv[1])},
        "times_ms": {k: round(v / per, 2) for k, v in sorted(_diff(after.times_ms, before.times_ms).items(),
                                                             key=lambda kv: -kv[1]) if v / per >= 0.01},
        "threads_cpu_ms": {k: round(v * 1000 / per, 2) for k, v in sorted(
            _diff(after.threads, before.threads).items(), key=lambda kv: -kv[1])},
    }


def main(pid: int, seconds: float = 10.0) -> None:
    """The broker's idle (or whatever-else) activity over `seconds`, per second; and what one snapshot costs it."""
    import json

    with BrokerProbe(pid) as probe:
        probe.snapshot()  # the first one starts the JVM's management agent
        first = probe.snapshot()
        second = probe.snapshot()
        time.sleep(seconds)
        third = probe.snapshot()
    print(json.dumps({"one_snapshot": usage(second, first), "per_second": usage(third, second, third.at - second.at)},
                     indent=1))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "deploy" / "local"))
    main(int(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 10.0)
