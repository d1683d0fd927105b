"""A gateway alone on the real broker (own topic namespace), driven by a BusDriver playing the backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.bus_driver import BusDriver
from tests.support.fleet import ServiceProcess
from tests.support.lone_gateway import driving, lone_gateway

KEEPALIVE_S = 0.5


@pytest.fixture(scope="session")
def bare_gateway(infra: dict[str, str]) -> Iterator[ServiceProcess]:
    with lone_gateway(infra, "gw", MOE_KEEPALIVE_S=str(KEEPALIVE_S)) as gateway:
        yield gateway


@pytest.fixture(scope="session")
async def driver(bare_gateway: ServiceProcess, infra: dict[str, str]) -> AsyncIterator[BusDriver]:
    async with driving(bare_gateway, infra["kafka"]) as bus:
        yield bus
