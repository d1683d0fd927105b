"""The idle fleet's CPU: what the running `make up` fleet's services (and the broker) burn with no request in flight,
in ms of CPU per second, from /proc (utime + stime of each process tree, fleetctl's pid files).

    python -m bench.idle_cpu [SECONDS]     # default 60

An idle consumer still wakes (fetch long polls, heartbeats, its fetcher's loop): issue 52 cut the loop's pacing
(moe_core.runtime.kafka_clients.CONSUMER_TIMING). The benchmark's CPU per request is net of this rate; an operator's
idle fleet pays it all day."""

from __future__ import annotations

import sys
import time

from bench.infra import fleetconfig  # (bench.infra puts deploy/local's fleetlib on the path)
from bench.procs import cpu_seconds, tree


def roots() -> dict[str, int]:
    """The running services and the broker, by name: pid."""
    from fleetlib.proc import read_pid

    names = [*fleetconfig.SERVICE_NAMES, "kafka"]
    return {name: pid for name in names if (pid := read_pid(name)) is not None}


def idle_rates(seconds: float) -> dict[str, float]:
    """ms of CPU per second of each process tree over `seconds`."""
    trees = {name: tree(pid) for name, pid in roots().items()}
    before = {name: cpu_seconds(pids) for name, pids in trees.items()}
    time.sleep(seconds)
    return {name: round((cpu_seconds(pids) - before[name]) * 1000 / seconds, 1) for name, pids in trees.items()}


def main(argv: list[str]) -> None:
    rates = idle_rates(float(argv[0]) if argv else 60.0)
    if not rates:
        sys.exit("no fleet running: `make up` first")
    for name, rate in rates.items():
        print(f"{name:14s} {rate:7.1f} ms/s")
    print(f"{'services':14s} {sum(v for k, v in rates.items() if k != 'kafka'):7.1f} ms/s")


if __name__ == "__main__":
    main(sys.argv[1:])
