"""Bring the local infrastructure up once per test session (starts only what is missing)."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

LOCAL = Path(__file__).resolve().parents[2] / "deploy" / "local"
if str(LOCAL) not in sys.path:
    sys.path.insert(0, str(LOCAL))

import fleetctl  # noqa: E402
from fleetlib import api as fleet_api  # noqa: E402
from fleetlib import config as fleet_config  # noqa: E402

from tests.support.counting_redis import CountingRedis  # noqa: E402


@pytest.fixture(scope="package")
def infra() -> dict[str, str]:
    """Endpoints of the running infrastructure (kafka, redis, postgres, neo4j, chroma, llm), its tables and
    roles made (as the session-wide fixture in tests/conftest.py does)."""
    fleetctl.ensure_up(["infra"])
    fleet_api.migrate()  # the fleet store's tables and each service's grants, as the declarations say now
    os.environ.update(fleet_config.kafka_admin_env())  # the tier's own Kafka clients: the broker's admin
    return fleetctl.endpoints()


@pytest.fixture
async def counting(infra: dict[str, str]) -> AsyncIterator[CountingRedis]:
    """A Redis client that counts its round trips (tests.support.counting_redis), from 0."""
    client = CountingRedis.from_url(infra["redis"], decode_responses=True)
    client.counts = [0]
    yield client
    await client.aclose()
