"""One service alone on the real broker (own topic namespace; the session's Kafka, Redis and Postgres), a
gateway so (and a control plane beside it), and a BusDriver playing the fleet behind a gateway."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager

from tests.support.bus_driver import BusDriver
from tests.support.fleet import ServiceProcess, free_port, running
from tests.support.namespaces import new_namespace


def lone_service(name: str, infra: dict[str, str], prefix: str, timeout_s: float = 180,
                 **extra: str) -> AbstractContextManager[ServiceProcess]:
    """Started and ready (within `timeout_s`); `extra` adds or overrides environment variables."""
    return _lone(name, infra, prefix, timeout_s, extra)


@contextmanager
def _lone(name: str, infra: dict[str, str], prefix: str, timeout_s: float,
          extra: dict[str, str]) -> Iterator[ServiceProcess]:
    port = free_port()
    env = {
        **os.environ,
        "MOE_TOPIC_NAMESPACE": new_namespace(prefix),
        "MOE_KAFKA_BOOTSTRAP": infra["kafka"],
        "MOE_REDIS_URL": infra["redis"],
        "MOE_POSTGRES_DSN": infra.get(f"postgres-{name}", infra["postgres"]),  # its own role, if it has one
        "MOE_HTTP_PORT": str(port),
        **extra,
    }
    with running(ServiceProcess(name, port, env), timeout_s) as service:
        yield service


def lone_gateway(infra: dict[str, str], prefix: str, workers: int = 1,
                 **extra: str) -> AbstractContextManager[ServiceProcess]:
    """A gateway of `workers` replicas (30 s request timeout); `extra` adds or overrides environment variables."""
    env = {"MOE_REQUEST_TIMEOUT_S": "30", "MOE_GATEWAY_WORKERS": str(workers), "MOE_LOG_LEVEL": "INFO", **extra}
    return _lone("gateway", infra, prefix, 180, env)


def lone_control_plane(beside: ServiceProcess, timeout_s: float = 180,
                       **extra: str) -> AbstractContextManager[ServiceProcess]:
    """A control plane beside a lone gateway: its topic namespace and stores (so key changes reach the gateway's
    replicas), a port of its own; `extra` adds or overrides environment variables."""
    from fleetlib import api  # deploy/local (tests/conftest puts it on the path)

    eps = api.endpoints()
    port = free_port()
    env = {**beside.env, "MOE_HTTP_PORT": str(port)}
    if env.get("MOE_POSTGRES_DSN") == eps.get("postgres-gateway"):  # its own role, not the edge's
        env["MOE_POSTGRES_DSN"] = eps["postgres-control-plane"]
    return running(ServiceProcess("control-plane", port, {**env, **extra}), timeout_s)


@asynccontextmanager
async def driving(gateway: ServiceProcess, bootstrap: str) -> AsyncIterator[BusDriver]:
    """A started BusDriver on the gateway's topic namespace; stopped on exit."""
    bus = BusDriver(bootstrap, gateway.env["MOE_TOPIC_NAMESPACE"])
    await bus.start()
    try:
        yield bus
    finally:
        await bus.stop()
