"""A gateway of two replicas on one port (own topic namespace, a model price configured, key caches that
would hold for ten minutes) with a BusDriver playing the backend, the control plane beside it (admin API,
usage), an admin key, and admin-API helpers."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.support.bus_driver import BusDriver
from tests.support.fleet import ServiceProcess
from tests.support.keys import create_key
from tests.support.lone_service import driving, lone_control_plane, lone_gateway

PRICES = {"moe-orchestrator": {"input": 2.0, "output": 10.0}}  # per million tokens


@pytest.fixture(scope="package", name="accounts_gateway")
def accounts_gateway_fixture(infra: dict[str, str]) -> Iterator[ServiceProcess]:
    with lone_gateway(infra, "acct", workers=2,
                      MOE_KEY_CACHE_TTL_S="600",  # only the fleet-wide announcement can make a change visible in time
                      MOE_MODEL_PRICES=json.dumps(PRICES), MOE_EXACT_CACHE="false") as gateway:
        yield gateway


@pytest.fixture(scope="package", name="accounts_control_plane")
def accounts_control_plane_fixture(accounts_gateway: ServiceProcess) -> Iterator[ServiceProcess]:
    with lone_control_plane(accounts_gateway) as control_plane:
        yield control_plane


@pytest.fixture(scope="package", name="accounts_driver")
async def accounts_driver_fixture(accounts_gateway: ServiceProcess, infra: dict[str, str]) -> AsyncIterator[BusDriver]:
    async with driving(accounts_gateway, infra["kafka"]) as bus:
        yield bus


@pytest.fixture(scope="package", name="admin_key")
async def admin_key_fixture(infra: dict[str, str]) -> str:
    # the fleet operator: these tests create tenants and keys of other tenants (a tenant admin may not)
    return await create_key(infra["postgres"], "e2e-accounts-admin", "operator", ["tenant-e2e-admin"])


class Admin:
    """The admin API over HTTP with an admin key; raises on any unexpected status."""

    def __init__(self, base: str, key: str) -> None:
        self.http = httpx.AsyncClient(base_url=f"{base}/v1/admin", headers={"Authorization": f"Bearer {key}"},
                                      timeout=30)

    async def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> dict[str, Any]:
        response = await self.http.request(method, path, json=body)
        assert response.status_code == expect, response.text
        result: dict[str, Any] = response.json()
        return result

    async def tenant(self, limits: dict[str, Any] | None = None) -> str:
        tenant_id = f"t-{uuid.uuid4().hex[:10]}"
        await self.call("POST", "/tenants", {"id": tenant_id, "name": "e2e", "limits": limits or {}}, 201)
        return tenant_id

    async def key(self, tenant_id: str, **fields: Any) -> dict[str, Any]:
        return await self.call("POST", "/keys", {"name": "e2e", "tenant_ids": [tenant_id], **fields}, 201)

    async def aclose(self) -> None:
        await self.http.aclose()


@pytest.fixture(name="admin")
async def admin_fixture(accounts_control_plane: ServiceProcess, admin_key: str) -> AsyncIterator[Admin]:
    client = Admin(accounts_control_plane.url, admin_key)
    yield client
    await client.aclose()


