"""One observed fleet for the live observability tests: every service as a real process exporting OTLP to a
real OTLP/gRPC receiver, a real Prometheus (Debian's, configured by fleetlib.prometheus) scraping every
service's /metrics, and traffic through the gateway with the official openai SDK."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fleetlib import api as fleetlib_api
from fleetlib import prometheus

from gateway.keystore import KeyStore
from tests.conftest import Scripted, scripted_env
from tests.e2e.research_fixtures import Searx, searxng_server  # noqa: F401  (research's web)
from tests.observability.otlp_receiver import OtlpReceiver
from tests.observability.traffic import Traffic, send_traffic
from tests.support.fleet import Fleet, free_port
from tests.support.namespaces import new_namespace

SCRAPE_INTERVAL = "1s"


class Prometheus:
    def __init__(self, url: str, proc: subprocess.Popen[bytes]) -> None:
        self.url = url
        self.proc = proc

    def query(self, expr: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=30)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", f"{expr}: {body}"
        return list(body["data"]["result"])


@pytest.fixture(scope="session")
def otlp() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    receiver.start()
    yield receiver
    receiver.stop()


async def _create_key(dsn: str) -> str:
    store = await KeyStore.connect(dsn)
    try:
        return (await store.create("observability", "user", ["tenant-observability"]))[1]
    finally:
        await store.close()


@pytest.fixture(scope="session")
def observed_fleet(infra: dict[str, str], scripted_server: Scripted, scripted_server_b: Scripted,
                   searxng_server: Searx, otlp: OtlpReceiver) -> Iterator[Fleet]:  # noqa: F811
    fleetlib_api.ensure_up(["chroma"])  # the planner's semantic cache
    env = {
        "MOE_TOPIC_NAMESPACE": new_namespace("obs"),
        "MOE_KAFKA_BOOTSTRAP": infra["kafka"],
        "MOE_REDIS_URL": infra["redis"],
        "MOE_POSTGRES_DSN": infra["postgres"],
        "MOE_CHROMA_URL": infra["chroma"],
        "MOE_SEARXNG_URL": searxng_server.url,
        "MOE_REQUEST_TIMEOUT_S": "60",
        "MOE_LOG_LEVEL": "INFO",
        **scripted_env(scripted_server.url, scripted_server_b.url),
        "MOE_ROUTER_ENABLED": "false",  # the scripted plans decide the experts
        "MOE_PLANNER_SKIP_TRIVIAL": "false",
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
    }
    fleet = Fleet(env, gateway_workers=1, extra=("graph-ingest", "gap-healer", "codex-lineage"))
    try:
        fleet.start()
        yield fleet
    finally:
        fleet.stop()


@pytest.fixture(scope="session")
def prom(observed_fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """Debian's Prometheus with the configuration fleetlib generates, pointed at this fleet's ports."""
    home: Path = tmp_path_factory.mktemp("prometheus")
    targets = {name: [f"127.0.0.1:{svc.port}"] for name, svc in observed_fleet.services.items()}
    conf = prometheus.write_config(home / "prometheus.yml", targets, interval=SCRAPE_INTERVAL)
    port = free_port()
    with open(home / "prometheus.log", "wb") as log:
        proc = subprocess.Popen(prometheus.argv(conf, home / "data", port), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    handle = Prometheus(url, proc)
    try:
        _wait_ready(handle, home / "prometheus.log")
        yield handle
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _wait_ready(handle: Prometheus, log: Path, timeout_s: float = 60) -> None:
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


@pytest.fixture(scope="session")
def traffic(observed_fleet: Fleet, prom: Prometheus, infra: dict[str, str], scripted_server: Scripted,
            scripted_server_b: Scripted) -> Traffic:
    """Two rounds of the same mix through the gateway (the second after Prometheus has seen the first,
    so every rate has a before and an after)."""
    key = asyncio.run(_create_key(infra["postgres"]))
    base_url = f"{observed_fleet['gateway'].url}/v1"
    first = send_traffic(base_url, key, observed_fleet, scripted_server, scripted_server_b, infra["kafka"], 1)
    _wait_for_scrape(prom, "sum(moe_gateway_requests_total)", first.requests)
    second = send_traffic(base_url, key, observed_fleet, scripted_server, scripted_server_b, infra["kafka"], 2)
    _wait_for_scrape(prom, "sum(moe_gateway_requests_total)", first.requests + second.requests)
    return second


def _wait_for_scrape(prom: Prometheus, expr: str, at_least: int, timeout_s: float = 60) -> None:
    end = time.monotonic() + timeout_s
    value = 0.0
    while time.monotonic() < end:
        result = prom.query(expr)
        value = float(result[0]["value"][1]) if result else 0.0
        if value >= at_least:
            return
        time.sleep(0.5)
    raise AssertionError(f"Prometheus saw {value} for {expr} after {timeout_s}s, expected >= {at_least}")
