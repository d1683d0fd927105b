"""A gateway alone on the real broker (own topic namespace, Kafka, Redis and Postgres of the session), and a
BusDriver playing the fleet behind it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from tests.support.bus_driver import BusDriver
from tests.support.fleet import ServiceProcess, free_port, running
from tests.support.namespaces import new_namespace


@contextmanager
def lone_gateway(infra: dict[str, str], prefix: str, workers: int = 1, **extra: str) -> Iterator[ServiceProcess]:
    """Started and ready; `extra` adds or overrides environment variables."""
    port = free_port()
    env = {
        **os.environ,
        "MOE_TOPIC_NAMESPACE": new_namespace(prefix),
        "MOE_KAFKA_BOOTSTRAP": infra["kafka"],
        "MOE_REDIS_URL": infra["redis"],
        "MOE_POSTGRES_DSN": infra["postgres"],
        "MOE_REQUEST_TIMEOUT_S": "30",
        "MOE_HTTP_PORT": str(port),
        "MOE_GATEWAY_WORKERS": str(workers),
        "MOE_LOG_LEVEL": "INFO",
        **extra,
    }
    with running(ServiceProcess("gateway", port, env)) as gateway:
        yield gateway


@asynccontextmanager
async def driving(gateway: ServiceProcess, bootstrap: str) -> AsyncIterator[BusDriver]:
    """A started BusDriver on the gateway's topic namespace; stopped on exit."""
    bus = BusDriver(bootstrap, gateway.env["MOE_TOPIC_NAMESPACE"])
    await bus.start()
    try:
        yield bus
    finally:
        await bus.stop()
