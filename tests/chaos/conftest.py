"""The chaos tier: one fleet for the whole tier, codex-lineage with it, on its own Kafka and stores
(tests/support/chaos_infra.py), so that killing, restarting and freezing them touches nothing another test session
uses. After each case the record of the requests it answered is checked (tests/support/record_check.py)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Scripted
from tests.conftest import fleet as fleetctl
from tests.e2e.research_fixtures import Searx, searxng, searxng_server  # noqa: F401  (research's web)
from tests.lineage.conftest import LineageFleet
from tests.support.audited_fleet import AuditedFleet, audited_fleet
from tests.support.chaos_infra import PrivateInfra
from tests.support.fleet import Fleet
from tests.support.keys import new_key

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
def chaos_audited(private_infra: PrivateInfra, scripted_server: Scripted,
                  searxng_server: Searx) -> Iterator[AuditedFleet]:  # noqa: F811  (the fixture, imported above)
    """The tier's fleet, codex-lineage with it (its own signing key and audit schema, the session's timestamp
    authority, a checkpoint every second): each case checks the record of the requests it answered."""
    fleetctl.ensure_up(["opa", "tsa"])  # graph-ingest's write decisions; the timestamp authority (both stateless)
    stores = {**private_infra.endpoints(), **{k: v for k, v in fleetctl.endpoints().items() if k.startswith("tsa")}}
    env = {
        **private_infra.service_env(),
        "MOE_REQUEST_TIMEOUT_S": str(DEADLINE_S),
        "MOE_SEARXNG_URL": searxng_server.url,
        "MOE_ROUTER_ENABLED": "false",  # every request goes through the scripted planner model
        "MOE_PLANNER_SKIP_TRIVIAL": "false",
    }
    # other sessions start processes all the time: a taken port is retried (attempts)
    with audited_fleet(stores, scripted_server.url, "chaos", services=("graph-ingest",), lean=False, attempts=3,
                       **env) as running:
        yield running


@pytest.fixture(scope="package")
def chaos_fleet(chaos_audited: AuditedFleet) -> Fleet:
    return chaos_audited.fleet


@pytest.fixture(scope="package")
def chaos_record(chaos_audited: AuditedFleet, private_infra: PrivateInfra) -> LineageFleet:
    """The tier's fleet as the record check sees it (tests/support/record_check.py: `replay verify` of each request
    in the operator's environment)."""
    tmp = Path(tempfile.gettempdir())
    return LineageFleet.of(chaos_audited, private_infra.endpoints(), tmp, tmp)


@pytest.fixture(scope="package")
def chaos_key(chaos_fleet: Fleet, private_infra: PrivateInfra) -> str:
    return new_key(private_infra.endpoints()["postgres"], "chaos", "user", [TENANT])


@pytest.fixture(scope="package")
def chaos_url(chaos_fleet: Fleet) -> str:
    return f"{chaos_fleet['gateway'].url}/v1"
