"""A real Prometheus for tests (Debian's, configured by fleetlib.prometheus) scraping the given targets, and
its HTTP query API: instant queries, a series' value, waiting for a value (a rate needs two scrapes)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from fleetlib import prometheus

from tests.support.fleet import free_port

WAIT_S = 90  # a loaded 2-core machine


class Prometheus:
    def __init__(self, url: str, proc: subprocess.Popen[bytes] | None = None) -> None:
        self.url = url
        self.proc = proc

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The series an instant query returns."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=30)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", f"{expr}: {body}"
        return list(body["data"]["result"])

    def value(self, expr: str) -> float | None:
        """The first series' value; None while the query returns no series."""
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def wait_some(self, expr: str, timeout_s: float = WAIT_S) -> float | None:
        """The query's value once it has one (None if it has none by the end)."""
        end, value = time.monotonic() + timeout_s, self.value(expr)
        while value is None and time.monotonic() < end:
            time.sleep(0.5)
            value = self.value(expr)
        return value

    def wait_at_least(self, expr: str, low: float, timeout_s: float = WAIT_S) -> float:
        """The query's value once it is at least `low`; an AssertionError if it is not by the end."""
        end, value = time.monotonic() + timeout_s, None
        while time.monotonic() < end:
            value = self.value(expr)
            if value is not None and value >= low:
                return value
            time.sleep(0.5)
        raise AssertionError(f"Prometheus: {expr} = {value} after {timeout_s}s, expected >= {low}")


@contextmanager
def running_prometheus(home: Path, targets: dict[str, list[str]], interval: str = "1s",
                       rules: list[Path] | None = None, timeout_s: float = WAIT_S) -> Iterator[Prometheus]:
    """Prometheus scraping `targets` ({job: [host:port]}) every `interval`, with `rules` (default: the fleet's
    alert rules); its configuration, data and log under `home`; stopped on exit."""
    conf = prometheus.write_config(home / "prometheus.yml", targets, interval=interval, rules=rules)
    port, log = free_port(), home / "prometheus.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(prometheus.argv(conf, home / "data", port), stdout=out, stderr=subprocess.STDOUT)
    handle = Prometheus(f"http://127.0.0.1:{port}", proc)
    try:
        _wait_ready(handle, log, timeout_s)
        yield handle
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _wait_ready(handle: Prometheus, log: Path, timeout_s: float) -> None:
    assert handle.proc is not None
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if handle.proc.poll() is not None:
            raise RuntimeError(f"prometheus exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{handle.url}/-/ready", timeout=3).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"prometheus not ready after {timeout_s}s: {log.read_text()[-2000:]}")
