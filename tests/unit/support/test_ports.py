"""The test processes' ports: outside the kernel's ephemeral range, never one in use, never the same twice."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.support import ports

pytestmark = pytest.mark.unit


def test_ports_lie_below_the_range_outgoing_connections_take_theirs_from() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    chosen = [ports.free_port() for _ in range(50)]
    assert all(ports.LOW <= p < min(low, ports.HIGH) for p in chosen)
    assert len(set(chosen)) == len(chosen)


def test_a_port_someone_listens_on_is_never_given(monkeypatch: pytest.MonkeyPatch) -> None:
    width = (ports.HIGH - ports.LOW) // ports.SLICES
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw5")
    first = ports.LOW + 5 * width
    busy = []
    for port in range(first, first + width - 1):  # every port of the slice but the last is in use
        sock = socket.socket()
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()
            continue
        sock.listen()
        busy.append(sock)
    try:
        assert ports.free_port() == first + width - 1
    finally:
        for sock in busy:
            sock.close()


def test_each_worker_has_its_own_slice(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}
    for worker in range(ports.SLICES):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", f"gw{worker}")
        seen[worker] = ports.free_port() - ports.LOW
    width = (ports.HIGH - ports.LOW) // ports.SLICES
    assert [offset // width for offset in seen.values()] == list(range(ports.SLICES))
