"""The usage figures on the console's first page say whose usage they are: the whole fleet's for the operator,
the tenant's for a tenant admin (GET /v1/usage answers a tenant admin with its own tenant's usage only). Rendered
HTML of the control plane in this process, on the real Postgres, Redis, Kafka and OPA."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from control_plane.app import create_app
from control_plane.settings import ControlPlaneSettings
from moe_core.access.keystore import KeyStore
from tests.support.namespaces import new_namespace

pytestmark = pytest.mark.infra
HEADING = re.compile(r'<h2 id="usage-scope">([^<]*)</h2>')


@pytest.fixture(scope="module")
async def console(infra: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    settings = ControlPlaneSettings(topic_namespace=new_namespace("usage"), kafka_bootstrap=infra["kafka"],
                                    redis_url=infra["redis"], postgres_dsn=infra["postgres"], opa_url=infra["opa"])
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console.test",
                                     timeout=30) as client:
            yield client


async def _keys_page(console: httpx.AsyncClient, key: str) -> str:
    console.cookies.clear()
    form = await console.get("/console/login")
    nonce = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert nonce is not None, form.text[:500]
    signed = await console.post("/console/login", data={"csrf_token": nonce.group(1), "api_key": key})
    assert signed.status_code == 303, signed.text[:500]
    page = await console.get("/console/keys")
    assert page.status_code == 200, page.text[:500]
    return page.text


async def test_the_usage_heading_names_the_whole_fleet_for_the_operator_and_the_tenant_otherwise(
        console: httpx.AsyncClient, infra: dict[str, str]) -> None:
    tenant = f"uh-{uuid.uuid4().hex[:8]}"
    store = await KeyStore.connect(infra["postgres"], cache_ttl_s=0)
    try:
        operator = (await store.create("usage-operator", "operator", [tenant]))[1]
        admin = (await store.create("usage-tenant-admin", "admin", [tenant]))[1]
    finally:
        await store.close()

    fleet = HEADING.search(await _keys_page(console, operator))
    assert fleet is not None and fleet.group(1) == "Usage this month (whole fleet)"
    own = HEADING.search(await _keys_page(console, admin))
    assert own is not None and own.group(1) == f"Usage this month (tenant {tenant})"
    assert "whole fleet" not in own.string
