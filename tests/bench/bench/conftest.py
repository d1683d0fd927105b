"""One Kafka broker of the bench tests' own for the modules that read a broker's account of its requests
(bench.kafka_costs_log's request log, bench.kafka_requests' JMX counters): a JVM start each cost ~20-30 s of setup
on two cores. Each module counts only its own requests (from a mark, or between two snapshots, on topics of its own),
so the other module's earlier traffic does not change what it asserts."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.ports import free_port

REPO = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class OwnBroker:
    bootstrap: str
    pid: int
    log: Path  # its request logger's file (one line per completed request, at DEBUG)


@pytest.fixture(scope="package")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnBroker]:
    """bench.kafka_broker's broker in a throwaway folder on free ports, with its request log (bench.kafka_costs_log);
    this process's Kafka clients connect as its admin (the local fleet's admin password)."""
    folder, port = tmp_path_factory.mktemp("kafka"), free_port()
    started = subprocess.run([sys.executable, "-m", "bench.kafka_costs_log", "start", str(folder), "--port", str(port),
                              "--controller-port", str(free_port()), "--tls-port", str(free_port())],
                             cwd=REPO, capture_output=True, text=True, timeout=180, check=False)
    assert started.returncode == 0, started.stdout + started.stderr
    printed = json.loads(started.stdout.splitlines()[-1])
    try:
        yield OwnBroker(f"127.0.0.1:{port}", int(printed["MOE_BENCH_KAFKA_PID"]), Path(printed["MOE_BENCH_KAFKA_LOG"]))
    finally:
        subprocess.run([sys.executable, "-m", "bench.kafka_broker", "stop", str(folder)], cwd=REPO, check=False)
