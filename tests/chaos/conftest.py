"""The chaos tier: one fleet for the whole tier, on its own Kafka and stores (tests/support/chaos_infra.py),
so that killing, restarting and freezing them touches nothing another test session uses."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.conftest import Scripted, scripted_env
from tests.conftest import fleet as fleetctl
from tests.e2e.research_fixtures import Searx, searxng, searxng_server  # noqa: F401  (research's web)
from tests.support.chaos_infra import PrivateInfra
from tests.support.fleet import Fleet
from tests.support.keys import new_key
from tests.support.namespaces import new_namespace

DEADLINE_S = 120  # the fleet's request deadline: no request may take longer (plus the client's slack)
STORES = ("kafka", "redis", "postgres", "neo4j", "chroma")
TENANT = "tenant-chaos"


@pytest.fixture(scope="package")
def private_infra() -> Iterator[PrivateInfra]:
    infra = PrivateInfra(STORES)
    try:
        try:
            infra.up()
        except RuntimeError as exc:  # a loaded machine can start Neo4j slower than fleetctl waits: once more
            print(f"chaos: private infrastructure not ready, waiting once more: {str(exc)[:200]}")
            infra.up()
        # the tier's own Kafka clients connect as the admin (its password is the shared broker's: chaos_infra)
        os.environ.update({k: v for k, v in infra.service_env().items() if k.startswith("MOE_KAFKA_")
                           and k != "MOE_KAFKA_BOOTSTRAP"})
        yield infra
    finally:
        infra.close()


@pytest.fixture(scope="package")
def chaos_fleet(private_infra: PrivateInfra, scripted_server: Scripted,
                searxng_server: Searx) -> Iterator[Fleet]:  # noqa: F811  (the fixture, imported above)
    env = {
        "MOE_TOPIC_NAMESPACE": new_namespace("chaos"),
        **private_infra.service_env(),
        "MOE_REQUEST_TIMEOUT_S": str(DEADLINE_S),
        "MOE_LOG_LEVEL": "INFO",
        **scripted_env(scripted_server.url),
        "MOE_SEARXNG_URL": searxng_server.url,
        "MOE_ROUTER_ENABLED": "false",  # every request goes through the scripted planner model
        "MOE_PLANNER_SKIP_TRIVIAL": "false",
    }
    fleetctl.ensure_up(["opa"])  # graph-ingest's write decisions (stateless: the session's shared one)
    fleet = Fleet(env, gateway_workers=1, extra=("graph-ingest",))
    try:
        fleet.start(attempts=3)  # other sessions start processes all the time: a taken port is retried
        yield fleet
    finally:
        fleet.stop()


@pytest.fixture(scope="package")
def chaos_key(chaos_fleet: Fleet, private_infra: PrivateInfra) -> str:
    return new_key(private_infra.endpoints()["postgres"], "chaos", "user", [TENANT])


@pytest.fixture(scope="package")
def chaos_url(chaos_fleet: Fleet) -> str:
    return f"{chaos_fleet['gateway'].url}/v1"
