"""One observed fleet for the live observability tests: every service as a real process exporting OTLP to a
real OTLP/gRPC receiver, a real Prometheus (Debian's, configured by fleetlib.prometheus) scraping every
service's /metrics, and traffic through the gateway with the official openai SDK."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fleetlib import api as fleetlib_api

from tests.conftest import Scripted, scripted_env
from tests.e2e.research_fixtures import Searx, searxng_server  # noqa: F401  (research's web)
from tests.observability.otlp_receiver import OtlpReceiver
from tests.observability.traffic import Traffic, send_traffic
from tests.support.audit_schema import drop_schema, own_schema
from tests.support.fleet import Fleet
from tests.support.keys import new_key
from tests.support.namespaces import new_namespace
from tests.support.prometheus_server import Prometheus, running_prometheus

SCRAPE_INTERVAL = "1s"


@pytest.fixture(scope="package")
def otlp() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="package")
def observed_fleet(infra: dict[str, str], scripted_server: Scripted, scripted_server_b: Scripted,
                   searxng_server: Searx, otlp: OtlpReceiver) -> Iterator[Fleet]:  # noqa: F811
    fleetlib_api.ensure_up(["chroma"])  # the planner's semantic cache
    namespace = new_namespace("obs")
    schema = own_schema(namespace)  # codex-lineage makes it at start (one role here), dropped at the end
    env = {
        "MOE_TOPIC_NAMESPACE": namespace,
        "MOE_AUDIT_SCHEMA": schema,
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
        "MOE_TRACE_SAMPLE_RATIO": "1",  # every trace recorded: the tests follow one request's spans
    }
    try:
        with Fleet(env, gateway_workers=1, extra=("graph-ingest", "gap-healer", "codex-lineage")) as fleet:
            yield fleet
    finally:
        drop_schema(infra["postgres"], schema)


@pytest.fixture(scope="package")
def prom(observed_fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """Debian's Prometheus with the configuration fleetlib generates, pointed at this fleet's ports."""
    targets = {name: [f"127.0.0.1:{svc.port}"] for name, svc in observed_fleet.services.items()}
    with running_prometheus(tmp_path_factory.mktemp("prometheus"), targets, interval=SCRAPE_INTERVAL,
                            timeout_s=60) as handle:
        yield handle


@pytest.fixture(scope="package")
def traffic(observed_fleet: Fleet, prom: Prometheus, infra: dict[str, str], scripted_server: Scripted,
            scripted_server_b: Scripted) -> Traffic:
    """Two rounds of the same mix through the gateway (the second after Prometheus has seen the first,
    so every rate has a before and an after); `more()` sends a further round."""
    key = new_key(infra["postgres"], "observability", "user", ["tenant-observability"])
    base_url = f"{observed_fleet['gateway'].url}/v1"
    rounds = [0]

    def send() -> Traffic:
        rounds[0] += 1
        return send_traffic(base_url, key, observed_fleet, scripted_server, scripted_server_b, infra["kafka"],
                            rounds[0])

    # every service scraped once before any traffic: each counter has a sample from before its first increase
    prom.wait_at_least("count(up == 1)", len(observed_fleet.services), timeout_s=60)
    first = send()
    prom.wait_at_least("sum(moe_gateway_requests_total)", first.requests, timeout_s=60)
    second = send()
    prom.wait_at_least("sum(moe_gateway_requests_total)", first.requests + second.requests, timeout_s=60)
    # A labelled series (graph-rag's stage timings by topic) is born with its first observation, so its rate
    # needs a later increase Prometheus samples: a cold graph task of the first round that finished together
    # with the second round's leaves none (CI saw the graph panel empty). Further rounds until there is one.
    graph_rate = 'sum(rate(moe_stage_seconds_count{service="graph-rag"}[30m]))'
    for _ in range(3):
        try:
            prom.wait_at_least(graph_rate, 1e-9, timeout_s=20)
            break
        except AssertionError:
            send()
    prom.wait_at_least(graph_rate, 1e-9, timeout_s=30)
    second.more = send
    return second
