"""A gateway alone on the real broker (own topic namespace), driven by a BusDriver playing the backend."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.bus_driver import BusDriver
from tests.support.fleet import ServiceProcess, free_port
from tests.support.namespaces import new_namespace

KEEPALIVE_S = 0.5


@pytest.fixture(scope="session")
def bare_gateway(infra: dict[str, str]) -> Iterator[ServiceProcess]:
    port = free_port()
    env = {
        **os.environ,
        "MOE_TOPIC_NAMESPACE": new_namespace("gw"),
        "MOE_KAFKA_BOOTSTRAP": infra["kafka"],
        "MOE_REDIS_URL": infra["redis"],
        "MOE_POSTGRES_DSN": infra["postgres"],
        "MOE_REQUEST_TIMEOUT_S": "30",
        "MOE_KEEPALIVE_S": str(KEEPALIVE_S),
        "MOE_HTTP_PORT": str(port),
        "MOE_GATEWAY_WORKERS": "1",
        "MOE_LOG_LEVEL": "INFO",
    }
    gateway = ServiceProcess("gateway", port, env)
    try:
        gateway.start()
        gateway.wait_ready()
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture(scope="session")
async def driver(bare_gateway: ServiceProcess, infra: dict[str, str]) -> AsyncIterator[BusDriver]:
    bus = BusDriver(infra["kafka"], bare_gateway.env["MOE_TOPIC_NAMESPACE"])
    await bus.start()
    yield bus
    await bus.stop()
