"""Ports for the processes a test (or `make bench`) starts, chosen so nothing else takes them first.

A port the kernel hands out for `bind(0)` lies in its ephemeral range (/proc/sys/net/ipv4/ip_local_port_range,
32768-60999 here), the range every outgoing connection's local port also comes from. Probing such a port and
closing it leaves a gap of a second or more before the service binds it, and on a busy machine a Kafka or HTTP
client's next connection can take the port in that gap: the service then fails with "address already in use"
(CI run 41: the bench's merger). Ports below the ephemeral range are never given to a connection, so the only
competitors are other allocations of this kind: each pytest-xdist worker gets its own slice of the range, and a
process never hands out the same port twice while it is still free to probe.
"""

from __future__ import annotations

import os
import random
import socket
import threading

LOW, HIGH = 20000, 32768  # above every fixed port of the local infrastructure (19093 is the highest), below 32768
SLICES = 8
_lock = threading.Lock()
_given: set[int] = set()


def _slice() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) % SLICES if worker.isdigit() else 0
    width = (HIGH - LOW) // SLICES
    return range(LOW + index * width, LOW + (index + 1) * width)


def _free(host: str, port: int) -> bool:
    with socket.socket() as probe:  # no SO_REUSEADDR: a port in use (or still in TIME_WAIT) is refused
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on, outside the ephemeral range and this process's earlier choices."""
    ports = _slice()
    with _lock:
        for _ in range(2):
            start = random.randrange(len(ports))
            for step in range(len(ports)):
                port = ports[(start + step) % len(ports)]
                if port not in _given and _free(host, port):
                    _given.add(port)
                    return port
            _given.clear()  # every port of the slice was handed out once: the earliest services have stopped
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")
